//! Cron schedules (with a seconds field, as tokio-cron-scheduler reads them) in a time zone.

use chrono::{DateTime, Timelike, Utc};

pub use crate::config::cron::{CronExpr, Zone};

/// The next `n` firing times after `from`, in UTC (fewer if the expression stops firing).
pub fn next_firings(
    expr: &CronExpr,
    zone: Zone,
    from: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    let mut t = whole_second(from).with_timezone(&zone.tz());
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match expr.cron().find_next_occurrence(&t, false) {
            Ok(next) => t = next,
            Err(_) => break,
        }
        out.push(t.with_timezone(&Utc));
    }
    out
}

/// The next firing after `from`, if any.
pub fn next_firing(expr: &CronExpr, zone: Zone, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_firings(expr, zone, from, 1).first().copied()
}

/// `t` without its fraction of a second: croner keeps the start's fraction in what it finds
/// (`03:00:00.8991`), and a cron firing is a whole second.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// The first firing of `cron` in `zone` strictly after `after`.
fn next_after(cron: &CronExpr, zone: Zone, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_firing(cron, zone, after)
}

/// The upcoming firing of each of a model's schedules, computed with croner in the model's
/// time zone on every step, so a daylight-saving change moves the UTC instant and never the
/// local time. The daemon arms a one-shot job per schedule at [`Plan::next_of`] and
/// publishes [`Plan::next`] as `driftd_next_scheduled_retrain_timestamp_seconds`: the fire
/// time and the metric come from the same computation and cannot disagree.
#[derive(Debug, Clone)]
pub struct Plan {
    crons: Vec<CronExpr>,
    zone: Zone,
    next: Vec<Option<DateTime<Utc>>>,
}

impl Plan {
    /// The plan of `crons` in `tz` as of `now`.
    pub fn new(crons: &[CronExpr], zone: Zone, now: DateTime<Utc>) -> Plan {
        let crons = crons.to_vec();
        let next = crons.iter().map(|c| next_after(c, zone, now)).collect();
        Plan { crons, zone, next }
    }

    /// The earliest upcoming firing of any schedule.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.next.iter().flatten().min().copied()
    }

    /// Schedule `i`'s upcoming firing (`None`: it never fires again).
    pub fn next_of(&self, i: usize) -> Option<DateTime<Utc>> {
        self.next.get(i).copied().flatten()
    }

    /// Schedule `i` fired at `now`: plans its next firing after the one it was due for (and
    /// after `now`, so a job that ran early or late never fires twice for one slot).
    pub fn fired(&mut self, i: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = self.next[i].map_or(now, |due| due.max(now));
        self.next[i] = next_after(&self.crons[i], self.zone, after);
        self.next[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Tz;

    #[test]
    fn weekly_and_monthly_in_a_time_zone() {
        // Thursday 2026-11-26 12:00 UTC.
        let from = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let weekly = next_firings(&CronExpr::parse("0 0 3 * * Mon").unwrap(), berlin, from, 3);
        // Monday 03:00 in Berlin (CET, UTC+1) is 02:00 UTC.
        assert_eq!(
            weekly[0],
            Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap()
        );
        assert_eq!(
            weekly[1],
            Utc.with_ymd_and_hms(2026, 12, 7, 2, 0, 0).unwrap()
        );
        let monthly = next_firings(
            &CronExpr::parse("0 0 4 1 * *").unwrap(),
            Zone::parse("UTC").unwrap(),
            from,
            2,
        );
        assert_eq!(
            monthly,
            vec![
                Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2027, 1, 1, 4, 0, 0).unwrap(),
            ]
        );
        assert!(
            CronExpr::parse("0 3 * * Mon").is_err(),
            "five fields: the seconds are required"
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(berlin.to_string(), "Europe/Berlin");
        // A start with a fraction of a second gives whole-second firings.
        let t = next_firings(
            &CronExpr::parse("0 0 3 * * Mon").unwrap(),
            Zone::parse("UTC").unwrap(),
            from + chrono::Duration::milliseconds(899),
            1,
        );
        assert_eq!(t[0], Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap());
    }

    /// Steps a controlled clock from firing to firing: before each step the plan says when
    /// the next firing is (what the metric publishes), the clock moves exactly there, and the
    /// schedule due then fires. Returns (schedule, fire time, published beforehand).
    fn replay(
        crons: &[&str],
        tz: &str,
        from: DateTime<Utc>,
        n: usize,
    ) -> Vec<(usize, DateTime<Utc>, DateTime<Utc>)> {
        let crons: Vec<CronExpr> = crons.iter().map(|c| CronExpr::parse(c).unwrap()).collect();
        let mut plan = Plan::new(&crons, Zone::parse(tz).unwrap(), from);
        let mut out = Vec::new();
        for _ in 0..n {
            let published = plan.next().unwrap();
            let clock = published;
            let due = (0..crons.len())
                .find(|&i| plan.next_of(i) == Some(clock))
                .unwrap();
            plan.fired(due, clock);
            out.push((due, clock, published));
        }
        out
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn weekly_and_monthly_fire_at_local_time_across_both_dst_changes() {
        use chrono::{Datelike, Timelike, Weekday};
        let crons = ["0 0 3 * * Mon", "0 0 4 1 * *"];
        // (zone, spring change, autumn change, expected UTC instants around them)
        let cases = [
            (
                "Europe/Berlin",
                vec![
                    utc(2026, 3, 23, 2), // Mon 03:00 CET (UTC+1)
                    utc(2026, 3, 30, 1), // Mon 03:00 CEST (UTC+2), the day after the change
                    utc(2026, 4, 1, 2),  // 1st 04:00 CEST
                    utc(2026, 10, 19, 1),
                    utc(2026, 10, 26, 2), // after the change back on Sun 25 Oct
                    utc(2026, 11, 1, 3),  // 1st 04:00 CET
                ],
            ),
            (
                "America/New_York",
                vec![
                    utc(2026, 3, 2, 8), // Mon 03:00 EST (UTC-5)
                    utc(2026, 3, 9, 7), // Mon 03:00 EDT (UTC-4), the day after Sun 8 Mar
                    utc(2026, 4, 1, 8),
                    utc(2026, 10, 26, 7),
                    utc(2026, 11, 1, 9), // 04:00 EST, two hours after 02:00 EDT fell back
                    utc(2026, 11, 2, 8),
                ],
            ),
        ];
        for (tz, expected) in cases {
            let zone: Tz = tz.parse().unwrap();
            let fires = replay(&crons, tz, utc(2026, 2, 20, 0), 60);
            for (i, at, published) in &fires {
                assert_eq!(
                    at, published,
                    "{tz}: fired at a time the metric did not show"
                );
                let local = at.with_timezone(&zone);
                if *i == 0 {
                    assert_eq!(
                        (local.weekday(), local.hour()),
                        (Weekday::Mon, 3),
                        "{tz} {local}"
                    );
                } else {
                    assert_eq!((local.day(), local.hour()), (1, 4), "{tz} {local}");
                }
                assert_eq!((local.minute(), local.second()), (0, 0));
            }
            let times: Vec<DateTime<Utc>> = fires.iter().map(|f| f.1).collect();
            for e in expected {
                assert!(times.contains(&e), "{tz}: no firing at {e}");
            }
            // Strictly increasing: nothing fired twice, nothing went back in time.
            assert!(times.windows(2).all(|w| w[0] < w[1]));
        }
    }

    /// Why the daemon does not use tokio-cron-scheduler's own time-zone jobs: the crate
    /// (0.15, `Job::new_async_tz` and `scheduler.rs`) plans every firing after the first in the
    /// fixed UTC offset the zone had when the job was created, so after a daylight-saving
    /// change a weekly job fires an hour off until restart. Reproduced here with the same
    /// croner call on a controlled clock.
    #[test]
    fn a_fixed_offset_as_the_crate_keeps_fires_an_hour_off_after_the_change() {
        use chrono::FixedOffset;
        let cron = CronExpr::parse("0 0 3 * * Mon").unwrap();
        let cron = cron.cron();
        let created = utc(2026, 3, 20, 12); // CET, UTC+1
        let fixed = FixedOffset::east_opt(3600).unwrap();
        let first_after_change = cron
            .find_next_occurrence(&utc(2026, 3, 23, 2).with_timezone(&fixed), false)
            .unwrap()
            .with_timezone(&Utc);
        // 03:00 at UTC+1 is 04:00 CEST on 30 March: an hour late.
        assert_eq!(first_after_change, utc(2026, 3, 30, 2));
        let plan = replay(&["0 0 3 * * Mon"], "Europe/Berlin", created, 2);
        assert_eq!(plan[1].1, utc(2026, 3, 30, 1));
    }
}
