//! The README cannot drift from the binary: every `driftd …` command line of its `sh` blocks
//! names a real subcommand and only flags that subcommand's `--help` lists, and every block
//! that can run on one machine is executed as written (`bash -euo pipefail`), in a temporary
//! directory holding the repository's `examples/`, with the built `driftd` first on `PATH`:
//!
//! - `<!-- readme-test: runs -->`: blocks that need no database (backtesting: generate, then
//!   backtest with `examples/driftd.toml`).
//! - `<!-- readme-test: runs-with-database -->`: blocks that need PostgreSQL ("Try it on one
//!   machine": migrate with the reference table, `check-config --database`, `driftd run` in the
//!   background, `demo-feed`, `models list`/`show`, `retrain`, `models export`). Each gets a
//!   fresh, empty database of the tests' PostgreSQL through `DRIFTD_DATABASE__URL`, the
//!   variable the block documents, and a bounded wait (`timeout`, which kills the block's
//!   process group); the block stops the daemon it starts itself (its `trap`).
//!
//! Left unmarked, because they cannot run on one test machine as written:
//! - Quick start step 2 (`sudo install … /etc/driftd`, `sudo editor`): root and an editor.
//! - Quick start step 3 and "Using it" / the registry commands / "Bring your own model" /
//!   backtest synopsis: syntax summaries with placeholders (`[--flag]`, `M`, `V`, `DIR`,
//!   `a|b`, `…`); their commands and flags are checked against `--help` above, and the
//!   runnable forms are in the marked blocks.
//! - "Developing: two commands" (`scripts/demo.sh`, `scripts/test.sh`): they install packages
//!   as root and `scripts/test.sh` runs this test itself.
//! - "Serving the champion" (`curl … http://HOST:9187`) and the HTTP retrain line: a daemon
//!   at a placeholder host with a token; the routes are tested in tests/it/ against the daemon.
//! - "The recommended configuration on many streams" (`scripts/eval_streams.py`): a benchmark
//!   needing the Python venv with River and minutes per stream.
//! - Kubernetes and systemd commands (`kubectl apply`, `systemctl`) appear only in prose.

use std::path::Path;
use std::process::Command;

use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::*;

const MARK: &str = "<!-- readme-test: runs -->";
const MARK_DB: &str = "<!-- readme-test: runs-with-database -->";

/// The `sh` blocks of the README: their text, and the line before them (a marker or not).
fn sh_blocks(readme: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = readme.lines().peekable();
    let mut previous = "";
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```sh") {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                block.push_str(l.trim_start());
                block.push('\n');
            }
            out.push((block, previous.trim().to_string()));
        }
        previous = line;
    }
    out
}

/// The `driftd` command lines of a block, continuation lines joined, comments dropped.
fn driftd_commands(block: &str) -> Vec<String> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim().to_string())
        .filter(|l| l.starts_with("driftd "))
        .collect()
}

/// The subcommand a line names (`models show`), and its `--flags`.
fn parse(line: &str) -> (Vec<String>, Vec<String>) {
    let tokens: Vec<&str> = line.split_whitespace().skip(1).collect();
    let path: Vec<String> = tokens
        .iter()
        .take_while(|t| {
            t.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !t.starts_with('-')
        })
        .take(2)
        .map(|t| t.to_string())
        .collect();
    let flags = tokens
        .iter()
        .flat_map(|t| t.split(['[', ']', '|', '=']))
        .filter(|t| t.starts_with("--") && t.len() > 2)
        .map(|t| t.to_string())
        .collect();
    (path, flags)
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn every_readme_command_names_a_real_subcommand_and_its_flags() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (block, _) in sh_blocks(&readme()) {
        for line in driftd_commands(&block) {
            let (mut path, flags) = parse(&line);
            // `driftd models` alone is no command; a second word that is a value is not a
            // subcommand (`completions bash`).
            let help = loop {
                let out = Command::new(driftd_bin())
                    .args(&path)
                    .arg("--help")
                    .output()
                    .unwrap();
                if out.status.success() || path.len() <= 1 {
                    break out;
                }
                path.pop();
            };
            if !help.status.success() {
                problems.push(format!(
                    "`{line}`: `driftd {}` is no subcommand",
                    path.join(" ")
                ));
                continue;
            }
            let help = String::from_utf8_lossy(&help.stdout).to_string();
            for f in flags
                .iter()
                .filter(|f| !["--help", "--version"].contains(&f.as_str()))
            {
                if !help.contains(f.as_str()) {
                    problems.push(format!("`{line}`: `driftd {}` has no {f}", path.join(" ")));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} driftd command lines found");
    assert!(
        problems.is_empty(),
        "README commands the binary does not have:\n{}",
        problems.join("\n")
    );
}

/// The blocks preceded by `marker`.
fn marked_blocks(marker: &str) -> Vec<String> {
    let blocks: Vec<String> = sh_blocks(&readme())
        .into_iter()
        .filter(|(_, before)| before == marker)
        .map(|(b, _)| b)
        .collect();
    assert!(!blocks.is_empty(), "no block is marked {marker}");
    blocks
}

/// Runs each block with `bash -euo pipefail` in a fresh directory holding `examples/`, the
/// built `driftd` first on `PATH` and `env` set, under a bounded wait; fails naming the block
/// with its stdout, stderr and the `driftd.log` a block may write.
fn run_blocks(blocks: &[String], env: &[(&str, String)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(driftd_bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    for block in blocks {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("examples")).unwrap();
        std::fs::copy(
            root.join("examples/driftd.toml"),
            dir.path().join("examples/driftd.toml"),
        )
        .unwrap();
        // The example names a systemd credential for the database password; the tests'
        // PostgreSQL trusts loopback, so the file only has to exist.
        let pw = dir.path().join("db-password");
        std::fs::write(&pw, "unused\n").unwrap();
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "10", "300", "bash", "-euo", "pipefail", "-c", block])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("DRIFTD_DATABASE__PASSWORD_FILE", &pw)
            .env_remove("DRIFTD_CONFIG")
            .env_remove("DRIFTD_DATABASE__URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let log = std::fs::read_to_string(dir.path().join("driftd.log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "README block failed ({}):\n{block}\nstdout:\n{}\nstderr:\n{}\ndriftd.log:\n{log}",
            match out.status.code() {
                Some(124) | Some(137) => "timed out after 300 s".to_string(),
                c => format!("exit {c:?}"),
            },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_readme_blocks_that_run_on_one_machine_run_as_written() {
    run_blocks(&marked_blocks(MARK), &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_blocks_that_need_a_database_run_as_written_against_a_fresh_one() {
    let blocks = marked_blocks(MARK_DB);
    let pg = shared_pg();
    let mut admin = PgConnection::connect(&pg.url("postgres")).await.unwrap();
    let mut urls = Vec::new();
    for i in 0..blocks.len() {
        // Empty (no reference table: the blocks create what they need).
        let name = format!("readme{}_{i}", std::process::id());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        urls.push(pg.url(&name));
    }
    for (block, url) in blocks.iter().zip(urls) {
        let block = block.clone();
        tokio::task::spawn_blocking(move || {
            run_blocks(&[block], &[("DRIFTD_DATABASE__URL", url)]);
        })
        .await
        .unwrap();
    }
}
