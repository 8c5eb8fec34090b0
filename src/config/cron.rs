//! Cron expressions and time zones, parsed when the configuration is read.

use std::fmt;

use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::Deserialize;

/// An IANA time zone (or `UTC`), parsed when the configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(Tz);

impl Zone {
    pub fn parse(tz: &str) -> Result<Zone, String> {
        tz.parse::<Tz>()
            .map(Zone)
            .map_err(|_| format!("`{tz}` is not an IANA time zone (e.g. Europe/Berlin, UTC)"))
    }

    pub fn tz(self) -> Tz {
        self.0
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Zone::parse(&s)
    }
}

/// A cron expression with seconds (`0 0 3 * * Mon`), parsed when the configuration is read;
/// it keeps its text for tokio-cron-scheduler and for messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    pub fn parse(expr: &str) -> Result<CronExpr, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| {
                format!(
                    "`{expr}` is not a cron expression with seconds (e.g. `0 0 3 * * Mon`): {e}"
                )
            })?;
        Ok(CronExpr {
            text: expr.to_string(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn cron(&self) -> &Cron {
        &self.cron
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for CronExpr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CronExpr::parse(&s)
    }
}
