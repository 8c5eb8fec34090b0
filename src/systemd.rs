//! systemd's notify protocol beyond READY/STOPPING: `STATUS=` lines and the watchdog.
//!
//! With `WatchdogSec=` in the unit, systemd sets `WATCHDOG_USEC` and restarts driftd when no
//! `WATCHDOG=1` arrives in time. The ping must mean "driftd is working", so it is not sent
//! from a timer of its own: every model loop calls [`beat`] each time round its poll loop,
//! and the ownership loop (which runs on every replica, standby included) calls
//! [`ping_if_alive`] each round, which pings only when every loop this replica runs has beaten
//! within the watchdog interval. A wedged loop therefore stops the pings and systemd restarts
//! the service. Without `NOTIFY_SOCKET` (not under systemd) no ping is sent.
//!
//! The same beats make `/healthz` ([`liveness`]): it fails when the ownership round or a loop
//! this replica runs has not gone round within `http.liveness_timeout_ms`, so Kubernetes
//! restarts a pod whose loops are stuck, as systemd's watchdog does.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The watchdog interval systemd asked for, if any: `WATCHDOG_USEC`, for this process when
/// `WATCHDOG_PID` names it or is unset (libsystemd's `sd_watchdog_enabled` rules; the
/// `sd-notify` crate insists on `WATCHDOG_PID`).
fn interval() -> Option<Duration> {
    static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        let env = |k| std::env::var(k).ok();
        watchdog_interval(
            env("WATCHDOG_USEC"),
            env("WATCHDOG_PID"),
            std::process::id(),
        )
    })
}

fn watchdog_interval(usec: Option<String>, pid: Option<String>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    match pid.map(|p| p.trim().parse::<u32>()) {
        None => Some(Duration::from_micros(usec)),
        Some(Ok(p)) if p == me => Some(Duration::from_micros(usec)),
        Some(_) => None,
    }
}

fn beats() -> &'static Mutex<HashMap<String, Instant>> {
    static BEATS: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    BEATS.get_or_init(Default::default)
}

static LIVENESS_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// `http.liveness_timeout_ms`, set once at start (default 120 s).
pub fn set_liveness_timeout(timeout: Duration) {
    let _ = LIVENESS_TIMEOUT.set(timeout);
}

fn liveness_timeout() -> Duration {
    *LIVENESS_TIMEOUT.get_or_init(|| Duration::from_secs(120))
}

/// When the ownership round last went round (none before its first).
static LAST_ROUND: Mutex<Option<Instant>> = Mutex::new(None);

/// How often a loop must go round for the watchdog to be fed and `/healthz` to pass (half
/// the shorter of their deadlines): an idle loop waits no longer than this.
pub fn beat_period() -> Option<Duration> {
    let live = liveness_timeout() / 2;
    Some(interval().map_or(live, |i| (i / 2).min(live)))
}

/// Model `model`'s loop went round once.
pub fn beat(model: &str) {
    let mut b = beats().lock().expect("watchdog lock");
    match b.get_mut(model) {
        Some(at) => *at = Instant::now(),
        None => {
            b.insert(model.to_string(), Instant::now());
        }
    }
}

/// `/healthz`: fine until the ownership round has first gone round (migrations, a database
/// not up yet: readiness says so); then the round and every loop it runs must have gone
/// round within `http.liveness_timeout_ms`.
pub fn liveness() -> Result<(), String> {
    let timeout = liveness_timeout();
    let now = Instant::now();
    let Some(round) = *LAST_ROUND.lock().expect("round lock") else {
        return Ok(());
    };
    if now.duration_since(round) > timeout {
        return Err(format!(
            "the ownership round has not gone round for {} s (http.liveness_timeout_ms = {})",
            now.duration_since(round).as_secs(),
            timeout.as_millis()
        ));
    }
    let b = beats().lock().expect("watchdog lock");
    let mut stuck: Vec<&str> = b
        .iter()
        .filter(|(_, &at)| now.duration_since(at) > timeout)
        .map(|(m, _)| m.as_str())
        .collect();
    if stuck.is_empty() {
        return Ok(());
    }
    stuck.sort_unstable();
    let more = stuck.len().saturating_sub(10);
    stuck.truncate(10);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Err(format!(
        "model loops have not gone round within http.liveness_timeout_ms ({} ms): {}{more}",
        timeout.as_millis(),
        stuck.join(", ")
    ))
}

/// The loops among `running` whose last beat is older than `timeout`. A loop with no beat
/// yet counts from `now` (it was just started); loops no longer running are forgotten, so a
/// model taken over again later starts afresh.
pub fn stale<'a>(
    beats: &mut HashMap<String, Instant>,
    running: impl IntoIterator<Item = &'a str>,
    now: Instant,
    timeout: Duration,
) -> Vec<&'a str> {
    let running: Vec<&str> = running.into_iter().collect();
    beats.retain(|m, _| running.contains(&m.as_str()));
    running
        .into_iter()
        .filter(|m| {
            let last = *beats.entry(m.to_string()).or_insert(now);
            now.duration_since(last) > timeout
        })
        .collect()
}

/// The ownership round went round with the loops in `running`: records it for
/// [`liveness`], and sends `WATCHDOG=1` if every loop has beaten within the watchdog interval.
pub fn ping_if_alive<'a>(running: impl IntoIterator<Item = &'a str>) {
    let now = Instant::now();
    *LAST_ROUND.lock().expect("round lock") = Some(now);
    let watchdog = interval();
    let stuck = {
        let mut b = beats().lock().expect("watchdog lock");
        stale(
            &mut b,
            running,
            now,
            watchdog.unwrap_or_else(liveness_timeout),
        )
    };
    let Some(timeout) = watchdog else { return };
    if stuck.is_empty() {
        let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
    } else {
        tracing::error!(models = ?stuck, timeout_s = timeout.as_secs(), "model loops stopped going round; withholding the watchdog ping");
    }
}

/// A `STATUS=` line for `systemctl status`.
pub fn status(text: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(text)]);
}

/// `STATUS=` with what this replica owns and why it is not ready (what `/readyz` says),
/// sent only when it changes.
pub fn ownership_status(owned: usize, models: usize, not_ready: Option<String>) {
    static LAST: Mutex<Option<(usize, usize, Option<String>)>> = Mutex::new(None);
    let now = (owned, models, not_ready);
    let mut last = LAST.lock().expect("status lock");
    if last.as_ref() != Some(&now) {
        let state = match &now.2 {
            None => "ready".to_string(),
            Some(why) => format!("not ready: {why}"),
        };
        status(&format!("owning {owned} of {models} model(s), {state}"));
        *last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_follows_libsystemds_rules() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            watchdog_interval(s("2000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_interval(s("2000000"), s("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_interval(s("2000000"), s("8"), 7),
            None,
            "another process's"
        );
        assert_eq!(watchdog_interval(s("0"), None, 7), None);
        assert_eq!(watchdog_interval(None, s("7"), 7), None);
    }

    #[test]
    fn a_loop_is_stale_only_after_the_timeout_without_a_beat() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut b = HashMap::from([("a".to_string(), t0)]);
        assert!(stale(&mut b, ["a", "b"], t0 + Duration::from_secs(5), timeout).is_empty());
        // "b" got its grace period from its first check, at t0 + 5 s.
        assert_eq!(
            stale(&mut b, ["a", "b"], t0 + Duration::from_secs(12), timeout),
            vec!["a"]
        );
        b.insert("a".into(), t0 + Duration::from_secs(12));
        assert_eq!(
            stale(&mut b, ["a", "b"], t0 + Duration::from_secs(16), timeout),
            vec!["b"]
        );
        // "b" stops running and is forgotten; taken over again, it gets a fresh grace period.
        assert!(stale(&mut b, ["a"], t0 + Duration::from_secs(17), timeout).is_empty());
        assert!(stale(&mut b, ["a", "b"], t0 + Duration::from_secs(18), timeout).is_empty());
    }
}
