#!/usr/bin/env bash
# Installs what driftd needs to build, run and test, idempotently:
#   PostgreSQL 15 and Prometheus (Debian packages), a Python venv with torch==2.13.0
#   (libtorch for tch, PyTorch for the export test, scipy/river for reference checks,
#   tritonclient for the serving test).
# Prints the environment to source on its last lines (scripts/env.sh does it for you).
set -euo pipefail
CACHE="${DRIFTD_CACHE:-$HOME/.cache/driftd}"
VENV="$CACHE/venv"
mkdir -p "$CACHE"
say() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
{ command -v prometheus && command -v promtool; } >/dev/null || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v node >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
else
  say "Debian packages present (postgresql-15, prometheus)"
fi

# tritonclient[http]: a third-party Open Inference Protocol client for the serving tests.
PY_PKGS=(torch==2.13.0 numpy scipy safetensors river==0.26.1 kubernetes-validate pyarrow "tritonclient[http]")
if [ ! -f "$VENV/.driftd-ok" ] || [ "$(cat "$VENV/.driftd-ok")" != "${PY_PKGS[*]}" ]; then
  say "creating Python venv at $VENV with ${PY_PKGS[*]} (about a minute, 4.7 GB)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
  echo "${PY_PKGS[*]}" > "$VENV/.driftd-ok"
else
  say "Python venv present at $VENV"
fi
say "done"
