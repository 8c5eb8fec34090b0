//! A training on its own OS thread at a lower priority (`[training] nice`).
//!
//! Predictions run on the async runtime's threads (see `serve::predictor`), which keep nice 0,
//! so a training never competes with them as an equal. Linux's nice value is per thread and a
//! new thread inherits its creator's, so libtorch's intra-op (OpenMP) workers, which each
//! master thread creates for itself, run at the training thread's priority too. tokio's
//! blocking pool is not used: its threads are shared and would keep a changed priority.
//! Priority alone did not keep the prediction tail short, though: what did is leaving a core
//! out of libtorch's thread team (see `training::serving_leaves_a_core`).

use tokio::sync::oneshot;

/// The work's thread ended without an answer (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the {0} thread ended without a result (it panicked)")]
pub struct ThreadDied(pub &'static str);

/// Runs `work` on a new thread named `name` at OS priority `nice`, and waits for its result
/// without blocking the runtime.
pub async fn run<T, F>(name: &'static str, nice: i32, work: F) -> Result<T, ThreadDied>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_this_thread(nice);
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        tracing::error!(thread = name, error = %e, "cannot start a thread");
        return Err(ThreadDied(name));
    }
    rx.await.map_err(|_| ThreadDied(name))
}

/// Sets the calling thread's nice value (Linux: per thread). Failing to is logged, not fatal:
/// the work still runs, only at the inherited priority.
fn lower_this_thread(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        if nice == 0 {
            return;
        }
        // SAFETY: plain syscalls on the calling thread, no memory is passed.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(nice, error = %e, "cannot lower the training thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The calling thread's nice value (Linux), for the tests.
#[cfg(all(test, target_os = "linux"))]
fn this_thread_nice() -> i32 {
    // SAFETY: as above. getpriority can return -1 legitimately; errno is cleared first.
    unsafe {
        *libc::__errno_location() = 0;
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_at_the_given_priority_and_the_caller_keeps_its_own() {
        let before = this_thread_nice();
        let (nice, name) = run("driftd-test", 7, || {
            let name = std::thread::current().name().map(str::to_owned);
            (this_thread_nice(), name)
        })
        .await
        .unwrap();
        // Never below the caller's: an unprivileged process can only lower its priority.
        assert_eq!(nice, before.max(7));
        assert_eq!(name.as_deref(), Some("driftd-test"));
        assert_eq!(this_thread_nice(), before);
        // Threads the work starts (libtorch's workers) inherit its priority.
        let inherited = run("driftd-test", 9, || {
            std::thread::spawn(this_thread_nice).join().unwrap()
        })
        .await
        .unwrap();
        assert_eq!(inherited, before.max(9));
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_hang() {
        let r = run("driftd-test", 0, || -> i32 { panic!("boom") }).await;
        assert!(r.is_err());
    }
}
