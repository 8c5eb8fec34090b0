# Sourced by the project's scripts: where the venv, libtorch and the shared build cache live.
export DRIFTD_CACHE="${DRIFTD_CACHE:-$HOME/.cache/driftd}"
export DRIFTD_VENV="$DRIFTD_CACHE/venv"
export DRIFTD_PYTHON="$DRIFTD_VENV/bin/python"
export LIBTORCH="${LIBTORCH:-$DRIFTD_VENV/lib/python3.11/site-packages/torch}"
# torch-sys treats LIBTORCH_USE_PYTORCH as set whatever its value: keep it unset.
unset LIBTORCH_USE_PYTORCH
# A target dir outside the clone, so CI and later runs reuse the (long) dependency build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DRIFTD_CACHE/target}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
