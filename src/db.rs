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
    let opts = connect_options(cfg)?;
    PgConnection::connect_with(&opts)
        .await
        .map_err(|e| name_the_server(e, &opts))
}

/// A connection error that names the server (`Connection refused` alone does not say where).
fn name_the_server(e: sqlx::Error, opts: &PgConnectOptions) -> sqlx::Error {
    match e {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(
            io.kind(),
            format!(
                "cannot connect to {}:{}: {io}",
                opts.get_host(),
                opts.get_port()
            ),
        )),
        other => other,
    }
}

/// What [`migrate_reporting`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub schema_created: bool,
    /// The migrations applied now (`0002 registry`); empty when the schema was up to date.
    pub applied: Vec<String>,
    /// How many there are in all.
    pub known: usize,
}

/// Creates schema `driftd` if needed and applies the embedded migrations inside it.
/// With the grants in `sql/grants.sql` the schema already exists and is owned by driftd,
/// so no database-level CREATE privilege is needed.
pub async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    migrate_reporting(conn).await.map(|_| ())
}

/// [`migrate`], saying what it created.
pub async fn migrate_reporting(conn: &mut PgConnection) -> Result<Migrated, sqlx::Error> {
    use sqlx::migrate::Migrate;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'driftd')")
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        conn.execute("CREATE SCHEMA driftd").await?;
    }
    conn.execute("SET search_path TO driftd").await?;
    // None applied yet when sqlx's own table does not exist.
    let before: Vec<i64> = match conn.list_applied_migrations().await {
        Ok(applied) => applied.iter().map(|m| m.version).collect(),
        Err(_) => Vec::new(),
    };
    let result = MIGRATOR.run(&mut *conn).await;
    conn.execute("RESET search_path").await?;
    result.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    let up = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration());
    let applied = up
        .clone()
        .filter(|m| !before.contains(&m.version))
        .map(|m| format!("{:04} {}", m.version, m.description))
        .collect();
    Ok(Migrated {
        schema_created: !exists,
        applied,
        known: up.count(),
    })
}

/// Creates the reference outcomes table (with its index and NOTIFY trigger) unless one of its
/// name exists; true if it was created now.
pub async fn create_reference_outcomes_table(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let existed: bool = sqlx::query_scalar("SELECT to_regclass('public.outcomes') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    conn.execute(OUTCOMES_REFERENCE_SQL).await?;
    Ok(!existed)
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
