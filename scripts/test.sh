#!/usr/bin/env bash
# The test suite, as CI runs it: install what is missing, then run every test on every CPU core.
#   bash scripts/test.sh [PYTEST ARGS...]
#   UNPINNED=1 bash scripts/test.sh       the newest versions that requirements*.txt allow instead
# pip installs requirements.txt and requirements-test.txt (pytest and its plugins; playwright, which
# drives the browser tests) at the exact versions of constraints.txt, those the suite last passed
# with. Chromium, which the browser tests run in, comes from the system: when it is missing and
# this runs as root on a machine with apt-get, Debian's `chromium` package is installed; elsewhere
# the browser tests are skipped with one line saying how to install it.
set -euo pipefail
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."
PY=${PYTHON:-python3}

if [ -n "${UNPINNED:-}" ]; then
    VERSIONS=(--upgrade)
else
    VERSIONS=(-c constraints.txt)
fi
PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --disable-pip-version-check "${VERSIONS[@]}" \
    -r requirements.txt -r requirements-test.txt
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing chromium for the browser tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
    else
        echo "note: chromium is not installed, so the browser tests will be skipped (as root: apt-get install -y chromium)" >&2
    fi
fi
exec $PY -m pytest -q -n auto "$@"
