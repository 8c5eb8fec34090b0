//! What the benchmarks share: the Python that runs their references, and their settings.

use std::path::PathBuf;

/// The Python with the references' packages (`DRIFTD_PYTHON`, default the venv
/// `scripts/setup.sh` makes); `None` when it is missing, and the reference is skipped.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var("DRIFTD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/driftd/venv/bin/python")
        });
    p.exists().then_some(p)
}

/// A numeric setting from the environment, or `default`.
pub fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
