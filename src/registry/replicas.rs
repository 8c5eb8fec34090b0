//! Cluster membership rows (`driftd.replicas`): heartbeats judged on the database's clock.
//! The sharing rule itself is `daemon::membership`.

use std::time::Duration;

use sqlx::PgConnection;

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
