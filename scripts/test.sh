#!/usr/bin/env bash
# Runs every test of driftd: formatting and lints, unit tests, doctests, the integration tests against a real
# PostgreSQL (started by the tests themselves), the River conformance vectors, and the
# deployment validators. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "[test] formatting (cargo fmt --check)"
cargo fmt --all -- --check
# Lints without a second dependency build: `cargo clippy` is `cargo check` with clippy-driver
# wrapping the workspace's rustc, and check artifacts are not shared with `cargo test`'s, so it
# compiled every dependency a second time (7.4 min of a cold run). The same wrapper on the test
# build lints our crate (every target, -D warnings) while the dependencies are built once.
echo "[test] building every target with clippy's lints (-D warnings; target dir: $CARGO_TARGET_DIR)"
CLIPPY_DRIVER=$(command -v clippy-driver) || { echo "clippy-driver not found (rustup component add clippy)"; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --locked --all-targets --no-run
echo "[test] running cargo tests"
# lib + bin unit tests, the `it` integration binary, doctests (benches are not run here).
cargo test --locked -- --test-threads 4
echo "[test] validating deployment files"
DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd" bash scripts/validate_deploy.sh
echo "[test] all tests passed"
