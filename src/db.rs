//! Connecting to PostgreSQL and applying driftd's embedded migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::config::DatabaseConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("sql/migrations");

/// The reference outcomes table, for users who have none (and for the demo and tests).
pub const OUTCOMES_REFERENCE_SQL: &str = include_str!("../sql/outcomes_reference.sql");

pub fn connect_options(cfg: &DatabaseConfig) -> Result<PgConnectOptions, sqlx::Error> {
    let mut opts: PgConnectOptions = cfg.url.expose().parse()?;
    if let Some(pw) = &cfg.password {
        opts = opts.password(pw.expose());
    }
    Ok(opts.application_name("driftd"))
}

/// A lazily connecting pool: the daemon starts (and reports not-ready) while the server is down.
pub fn pool(cfg: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .connect_lazy_with(connect_options(cfg)?))
}

pub async fn connect_one(cfg: &DatabaseConfig) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect_with(&connect_options(cfg)?).await
}

/// Creates schema `driftd` if needed and applies the embedded migrations inside it.
/// With the grants in `sql/grants.sql` the schema already exists and is owned by driftd,
/// so no database-level CREATE privilege is needed.
pub async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'driftd')")
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        conn.execute("CREATE SCHEMA driftd").await?;
    }
    conn.execute("SET search_path TO driftd").await?;
    let result = MIGRATOR.run(&mut *conn).await;
    conn.execute("RESET search_path").await?;
    result.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
}

pub async fn create_reference_outcomes_table(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute(OUTCOMES_REFERENCE_SQL).await?;
    Ok(())
}

/// Exponential backoff with full jitter, for reconnecting to a server that went away.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempt: u32,
}

impl Backoff {
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
        }
    }
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
    pub fn next_delay(&mut self) -> Duration {
        use rand::Rng;
        let cap = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.max_ms);
        self.attempt += 1;
        // Full jitter spreads replicas that lost the server at the same moment.
        let ms = rand::thread_rng().gen_range(cap / 2..=cap.max(1));
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::new(100, 1_000);
        let d: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert!(d[0] >= 50 && d[0] <= 100, "{d:?}");
        assert!(d[3] >= 400 && d[3] <= 800, "{d:?}");
        assert!(d.iter().all(|&x| x <= 1_000), "{d:?}");
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
    }
}
