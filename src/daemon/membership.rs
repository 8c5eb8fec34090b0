//! Cluster membership for balanced ownership. Every replica keeps a heartbeat row in
//! `driftd.replicas`; the live replicas (fresh heartbeat, judged on the database's clock so that
//! replicas' clocks never matter) each own their share of the models: with `M` models and `R`
//! live replicas, the first `M mod R` replicas in id order own `⌈M/R⌉`, the rest `⌊M/R⌋`.
//! PostgreSQL stays the only coordination service; the advisory locks stay the guard against
//! two owners, so a moment of disagreement about membership costs balance, never correctness.
//! The heartbeat's SQL is in the storage layer (`registry::replicas`).

/// How many models this replica should own: its share, by its rank among the live replicas.
/// A replica missing from `live` (its heartbeat not yet visible) counts as the last one.
pub fn quota(models: usize, live: &[String], me: &str) -> usize {
    let mut ids: Vec<&str> = live.iter().map(String::as_str).collect();
    if !ids.contains(&me) {
        ids.push(me);
    }
    ids.sort_unstable();
    ids.dedup();
    let rank = ids.iter().position(|id| *id == me).expect("inserted above");
    let r = ids.len();
    models / r + usize::from(rank < models % r)
}

/// A replica id unique across restarts: host, process and a random suffix.
pub fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "driftd".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i:02}")).collect()
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for models in [0, 1, 2, 7, 300, 10_000] {
            for r in 1..=7 {
                let live = ids(r);
                let shares: Vec<usize> = live.iter().map(|me| quota(models, &live, me)).collect();
                assert_eq!(shares.iter().sum::<usize>(), models, "M={models} R={r}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "M={models} R={r}: {shares:?}");
                assert_eq!(*lo, models / r);
            }
        }
    }

    #[test]
    fn a_replica_not_yet_visible_counts_itself_last() {
        let live = ids(2);
        // Two visible replicas plus a newcomer: the newcomer takes a third, the smallest share.
        assert_eq!(quota(10, &live, "zz"), 3);
        assert_eq!(quota(10, &live, "r00"), 5, "the others only see themselves");
    }
}
