//! A configured duration (`"90s"`, `"15m"`, `"1h"`, `"7d"`, `"2w"`), parsed once when the
//! configuration is read. It keeps its text, which names time windows in metric labels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A positive whole number of seconds, written with a unit.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    secs: i64,
    text: String,
}

impl Span {
    /// Parses `"90s"`, `"15m"`, `"1h"`, `"7d"`, `"2w"`; the error says why not.
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit (s, m, h, d, w)"))?;
        let (num, unit) = s.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{s}` does not start with a whole number"))?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(format!("`{s}` has unknown unit `{unit}` (s, m, h, d, w)")),
        };
        if n <= 0 {
            return Err(format!("`{s}` must be positive"));
        }
        let secs = n
            .checked_mul(mult)
            .ok_or_else(|| format!("`{s}` is too long"))?;
        Ok(Span {
            secs,
            text: s.to_string(),
        })
    }

    /// A default written in code: `secs` seconds, spelt `text`.
    pub fn of(secs: i64, text: &str) -> Span {
        Span {
            secs,
            text: text.to_string(),
        }
    }

    pub fn secs(&self) -> i64 {
        self.secs
    }

    pub fn as_chrono(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.secs)
    }

    /// As configured (`"1h"`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// As its text, so that a printed configuration reads as it was written.
impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Span::parse(&s)
    }
}

impl From<Span> for String {
    fn from(s: Span) -> String {
        s.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_text_is_kept() {
        assert_eq!(Span::parse("7d").unwrap().secs(), 604_800);
        assert_eq!(Span::parse("90s").unwrap().as_str(), "90s");
        for bad in ["7", "0h", "h", "3y", "-1m", "99999999999999999w"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deserialising_names_the_reason() {
        #[derive(Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            d: Span,
        }
        let e = toml::from_str::<T>("d = \"5x\"").unwrap_err().to_string();
        assert!(e.contains("unknown unit `x`"), "{e}");
        let t: T = toml::from_str("d = \"5m\"").unwrap();
        assert_eq!(t.d.secs(), 300);
    }
}
