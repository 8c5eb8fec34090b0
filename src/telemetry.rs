//! Logging: a `tracing` subscriber in human or JSON form, whose filter can change at run time.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogFormat;

type Reloader = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// Reads and replaces the active log filter (`GET/PUT /log-level`).
#[derive(Clone)]
pub struct LogLevelHandle {
    current: Arc<Mutex<String>>,
    reload: Arc<Reloader>,
}

impl LogLevelHandle {
    pub fn get(&self) -> String {
        self.current.lock().expect("log level lock").clone()
    }

    pub fn set(&self, filter: &str) -> Result<(), String> {
        let parsed =
            EnvFilter::try_new(filter).map_err(|e| format!("invalid filter `{filter}`: {e}"))?;
        (self.reload)(parsed)?;
        *self.current.lock().expect("log level lock") = filter.to_string();
        Ok(())
    }

    /// A handle that changes nothing but remembers the filter (tests, embedded use).
    pub fn detached(filter: &str) -> Self {
        LogLevelHandle {
            current: Arc::new(Mutex::new(filter.to_string())),
            reload: Arc::new(Box::new(|_| Ok(()))),
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level.
pub fn init(format: LogFormat, level: &str) -> Result<LogLevelHandle, String> {
    let initial = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let filter =
        EnvFilter::try_new(&initial).map_err(|e| format!("invalid log filter `{initial}`: {e}"))?;
    let (filter_layer, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    let registry = tracing_subscriber::registry().with(filter_layer);
    // Colour codes only on a terminal (a redirected file or journald gets plain text), and
    // never with NO_COLOR set.
    let ansi = {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    };
    let result = match format {
        LogFormat::Human => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|e| e.to_string())?;
    Ok(LogLevelHandle {
        current: Arc::new(Mutex::new(initial)),
        reload: Arc::new(Box::new(move |f| {
            handle.reload(f).map_err(|e| e.to_string())
        })),
    })
}
