//! The command line: `run`, `migrate`, `check-config`, and the operator commands.
//!
//! Every command is one function in [`commands`] returning [`Outcome`]; [`exit_code`] is the
//! one place that turns an outcome into the process's exit status:
//!
//! | code | meaning |
//! |---:|---|
//! | 0 | done (`retrain --wait`: the run promoted a new champion) |
//! | 1 | runtime failure (database unreachable, unreadable input, training error) |
//! | 2 | bad configuration or usage (the message names the key or the argument) |
//! | 3 | `retrain --wait`: the run finished and kept the champion |
//! | 4 | `retrain --wait`: the run failed or was cancelled |
//! | 5 | `retrain --wait`: `--timeout` passed before the run finished (it may still run) |
//! | 6 | `backtest --fail-under`: the prequential accuracy is below the threshold |
//! | 7 | `retrain --wait`: nothing to do (no row the champion has not seen); nothing trained |

mod args;
mod commands;
mod doctor;
mod output;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
use args::Command;

/// How a command ended. Failures carry the message printed on stderr.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// `retrain --wait`: the run ended without a new champion.
    RunKept,
    /// `retrain --wait`: the run failed or was cancelled.
    RunFailed(String),
    /// `retrain --wait`: still not finished when the timeout passed.
    WaitTimedOut,
    /// `retrain --wait`: the run was skipped, with why (nothing new to learn from).
    NothingToDo(String),
    /// `backtest --fail-under`: accuracy, threshold.
    BelowThreshold {
        accuracy: f64,
        threshold: f64,
    },
    /// Exit code 2.
    BadConfig(String),
    /// Exit code 1.
    Failed(String),
}

impl Outcome {
    fn failed(context: &str, e: impl std::fmt::Display) -> Self {
        Outcome::Failed(format!("{context}: {e}"))
    }
}

/// The one mapping from outcomes to exit codes (documented in the module and the README).
pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Done => 0,
        Outcome::Failed(_) => 1,
        Outcome::BadConfig(_) => 2,
        Outcome::RunKept => 3,
        Outcome::RunFailed(_) => 4,
        Outcome::WaitTimedOut => 5,
        Outcome::BelowThreshold { .. } => 6,
        Outcome::NothingToDo(_) => 7,
    }
}

/// What is printed on stderr for an outcome, if anything.
fn message(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Done => None,
        Outcome::RunKept => Some("the run finished and kept the champion".into()),
        Outcome::RunFailed(e) => Some(format!("the run failed: {e}")),
        Outcome::WaitTimedOut => Some("timed out waiting for the run (it may still run)".into()),
        Outcome::NothingToDo(why) => Some(format!("nothing to do: {why}")),
        Outcome::BelowThreshold {
            accuracy,
            threshold,
        } => Some(format!(
            "prequential accuracy {accuracy:.4} is below --fail-under {threshold}"
        )),
        Outcome::BadConfig(e) => Some(format!("bad configuration: {e}")),
        Outcome::Failed(e) => Some(e.clone()),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(cli.command)),
        Err(e) => Outcome::failed("cannot start the async runtime", e),
    };
    if let Some(m) = message(&outcome) {
        eprintln!("driftd: {m}");
    }
    ExitCode::from(exit_code(&outcome))
}

async fn dispatch(cmd: Command) -> Outcome {
    match cmd {
        Command::Run { config } => commands::run(&config.config).await,
        Command::Migrate {
            config,
            create_outcomes_table,
        } => commands::migrate(&config.config, create_outcomes_table).await,
        Command::CheckConfig {
            config,
            output,
            database: false,
        } => commands::check_config(&config.config, output),
        Command::CheckConfig {
            config,
            output,
            database: true,
        } => doctor::check_database(&config.config, output).await,
        Command::Models { config, action } => commands::models(&config, action).await,
        Command::Retrain(args) => commands::retrain(args).await,
        Command::Backtest(args) => commands::backtest(*args).await,
        Command::Generate {
            out,
            rows,
            n_features,
            config,
            model,
            seed,
            categorical,
        } => commands::generate(&out, rows, (n_features, categorical), (config, model), seed),
        Command::DemoFeed(args) => commands::demo_feed(args).await,
        Command::Completions { shell } => commands::completions(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_outcome_has_its_own_exit_code() {
        let all = [
            Outcome::Done,
            Outcome::Failed(String::new()),
            Outcome::BadConfig(String::new()),
            Outcome::RunKept,
            Outcome::RunFailed(String::new()),
            Outcome::WaitTimedOut,
            Outcome::BelowThreshold {
                accuracy: 0.5,
                threshold: 0.6,
            },
            Outcome::NothingToDo(String::new()),
        ];
        let codes: Vec<u8> = all.iter().map(exit_code).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(message(&Outcome::Done).is_none());
        assert!(all[1..].iter().all(|o| message(o).is_some()));
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
