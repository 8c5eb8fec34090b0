//! `[serve]`: the prediction routes' limits (the routes are in [`crate::serve`]).

use serde::Deserialize;

/// `[serve]`: limits of the prediction routes and how often champions are re-checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Most rows one prediction request may carry. Default 10 000.
    pub max_rows: usize,
    /// Largest request body accepted, in bytes. Default 8 MiB.
    pub max_body_bytes: usize,
    /// The fallback check of every champion's version, for a lost notification. Default 10 s.
    pub refresh_interval_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_rows: 10_000,
            max_body_bytes: 8 << 20,
            refresh_interval_ms: 10_000,
        }
    }
}

impl ServeConfig {
    /// `(key, reason)` for the first bad setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_rows == 0 {
            return Err(("max_rows", "must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(("max_body_bytes", "must be at least 1024".into()));
        }
        if self.refresh_interval_ms < 100 {
            return Err(("refresh_interval_ms", "must be at least 100".into()));
        }
        Ok(())
    }
}
