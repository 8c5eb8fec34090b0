//! Cron schedules (with a seconds field, as tokio-cron-scheduler reads them) in a time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

pub fn parse_timezone(tz: &str) -> Result<Tz, String> {
    tz.parse::<Tz>()
        .map_err(|_| format!("`{tz}` is not an IANA time zone (e.g. Europe/Berlin, UTC)"))
}

pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("`{expr}` is not a cron expression with seconds (e.g. `0 0 3 * * Mon`): {e}")
        })
}

/// The next `n` firing times after `from`, in UTC.
pub fn next_firings(
    expr: &str,
    tz: &str,
    from: DateTime<Utc>,
    n: usize,
) -> Result<Vec<DateTime<Utc>>, String> {
    let cron = parse_cron(expr)?;
    let tz = parse_timezone(tz)?;
    let mut t = from.with_timezone(&tz);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        t = cron
            .find_next_occurrence(&t, false)
            .map_err(|e| format!("`{expr}` never fires: {e}"))?;
        out.push(t.with_timezone(&Utc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekly_and_monthly_in_a_time_zone() {
        // Thursday 2026-11-26 12:00 UTC.
        let from = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let weekly = next_firings("0 0 3 * * Mon", "Europe/Berlin", from, 3).unwrap();
        // Monday 03:00 in Berlin (CET, UTC+1) is 02:00 UTC.
        assert_eq!(
            weekly[0],
            Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap()
        );
        assert_eq!(
            weekly[1],
            Utc.with_ymd_and_hms(2026, 12, 7, 2, 0, 0).unwrap()
        );
        let monthly = next_firings("0 0 4 1 * *", "UTC", from, 2).unwrap();
        assert_eq!(
            monthly,
            vec![
                Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2027, 1, 1, 4, 0, 0).unwrap(),
            ]
        );
        assert!(
            parse_cron("0 3 * * Mon").is_err(),
            "five fields: the seconds are required"
        );
        assert!(parse_timezone("Mars/Olympus").is_err());
    }
}
