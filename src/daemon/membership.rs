//! Cluster membership for balanced ownership. Every replica keeps a heartbeat row in
//! `driftd.replicas`; the live replicas (fresh heartbeat, judged on the database's clock so that
//! replicas' clocks never matter) each own their share of the models: with `M` models and `R`
//! live replicas, the first `M mod R` replicas in id order own `⌈M/R⌉`, the rest `⌊M/R⌋`.
//! PostgreSQL stays the only coordination service; the advisory locks stay the guard against
//! two owners, so a moment of disagreement about membership costs balance, never correctness.

use std::time::Duration;

use sqlx::PgConnection;

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

/// Refreshes this replica's heartbeat and returns the ids of the live replicas (itself
/// included), sorted. Rows stale for ten times the TTL are removed.
pub async fn heartbeat(
    conn: &mut PgConnection,
    me: &str,
    owned: usize,
    ttl: Duration,
) -> Result<Vec<String>, sqlx::Error> {
    let ttl_s = ttl.as_secs_f64();
    sqlx::query(
        "INSERT INTO driftd.replicas (id, owned) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), owned = EXCLUDED.owned",
    )
    .bind(me)
    .bind(owned as i32)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM driftd.replicas WHERE heartbeat_at < now() - make_interval(secs => $1)",
    )
    .bind(ttl_s * 10.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar(
        "SELECT id FROM driftd.replicas WHERE heartbeat_at >= now() - make_interval(secs => $1) \
         ORDER BY id",
    )
    .bind(ttl_s)
    .fetch_all(&mut *conn)
    .await
}

/// Leaves the cluster at shutdown, so the others take this replica's share at once instead
/// of after the TTL.
pub async fn leave(conn: &mut PgConnection, me: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM driftd.replicas WHERE id = $1")
        .bind(me)
        .execute(conn)
        .await
        .map(|_| ())
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
