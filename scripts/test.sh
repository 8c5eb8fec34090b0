#!/usr/bin/env bash
# Runs every test of driftd: formatting and lints, unit tests, doctests, the integration tests against a real
# PostgreSQL (started by the tests themselves), the River conformance vectors, and the
# deployment validators. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "[test] formatting and lints (cargo fmt --check, cargo clippy -D warnings)"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
echo "[test] building and running cargo tests (target dir: $CARGO_TARGET_DIR)"
# lib + bin unit tests, the `it` integration binary, doctests (benches are not run here).
cargo test --locked -- --test-threads 4
echo "[test] validating deployment files"
DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd" bash scripts/validate_deploy.sh
echo "[test] all tests passed"
