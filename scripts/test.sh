#!/usr/bin/env bash
# The test suite, as CI runs it: install what is missing, then run every test on every CPU core.
#   bash scripts/test.sh [PYTEST ARGS...]
#   UNPINNED=1 bash scripts/test.sh       the newest versions that requirements*.txt allow instead
# pip installs requirements.txt and requirements-test.txt (pytest and its plugins; playwright, which
# drives the browser tests) at the exact versions of constraints.txt, those the suite last passed
# with. Chromium, which the browser tests run in, comes from the system: when it is missing and
# this runs as root on a machine with apt-get, Debian's `chromium` package is installed (and libGL
# for OpenCV); elsewhere those tests are skipped with one line saying how to install what they need.
# Any PYTEST ARGS pass on to pytest (python -m pytest --help lists them); --help alone prints this.
set -euo pipefail
if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then  # this header, as every script's --help
    sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
fi
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."
PY=${PYTHON:-python3}

pip_install() { PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --disable-pip-version-check "$@"; }
if [ -n "${UNPINNED:-}" ]; then
    pip_install --upgrade -r requirements.txt -r requirements-test.txt
# pip is asked only when a package is missing or not at its pinned version: it takes seconds to find
# nothing to do (scripts/unmet_requirements.py checks in a fraction of one).
elif [ -n "$($PY scripts/unmet_requirements.py --constraints constraints.txt requirements.txt requirements-test.txt)" ]; then
    pip_install -c constraints.txt -r requirements.txt -r requirements-test.txt
fi
# apt_install WHAT PACKAGES...: as root on a machine with apt-get, install PACKAGES; else say what is skipped.
apt_install() {
    local what=$1; shift
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing $* for $what"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
    else
        echo "note: $* missing, so $what will be skipped (as root: apt-get install -y $*)" >&2
    fi
}
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    apt_install "the browser tests" chromium
fi
# OpenCV, which pytorch-grad-cam and Quantus import, needs the system's libGL.
if ! $PY -c "import cv2" >/dev/null 2>&1; then
    apt_install "the ROAD and Quantus agreement tests" libgl1 libglib2.0-0
fi
exec $PY -m pytest -q -n auto "$@"
