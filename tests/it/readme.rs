//! The README cannot drift from the binary: every `driftd …` command line of its `sh` blocks
//! names a real subcommand and only flags that subcommand's `--help` lists, and every block
//! marked `<!-- readme-test: runs -->` (the ones that run on one machine without a database
//! or a service) is executed as written, in a directory with the repository's `examples/`.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

const MARK: &str = "<!-- readme-test: runs -->";

/// The `sh` blocks of the README: their text, and whether the marker precedes them.
fn sh_blocks(readme: &str) -> Vec<(String, bool)> {
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
            out.push((block, previous.trim() == MARK));
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

#[test]
fn the_readme_blocks_that_run_on_one_machine_run_as_written() {
    let blocks: Vec<String> = sh_blocks(&readme())
        .into_iter()
        .filter(|(_, runs)| *runs)
        .map(|(b, _)| b)
        .collect();
    assert!(!blocks.is_empty(), "no block is marked {MARK}");
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(
        root.join("examples/driftd.toml"),
        dir.path().join("examples/driftd.toml"),
    )
    .unwrap();
    // The example names a systemd credential for the database password; the commands here
    // do not connect, but the file must exist.
    let pw = dir.path().join("db-password");
    std::fs::write(&pw, "unused\n").unwrap();
    let bin_dir = Path::new(driftd_bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    for block in blocks {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("DRIFTD_DATABASE__PASSWORD_FILE", &pw)
            .env_remove("DRIFTD_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block failed:\n{block}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
