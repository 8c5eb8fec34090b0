//! Cron schedules (with a seconds field, as tokio-cron-scheduler reads them) in a time zone.

use chrono::{DateTime, Utc};

pub use crate::config::cron::{CronExpr, Zone};

/// The next `n` firing times after `from`, in UTC (fewer if the expression stops firing).
pub fn next_firings(
    expr: &CronExpr,
    zone: Zone,
    from: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    let mut t = from.with_timezone(&zone.tz());
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
    }
}
