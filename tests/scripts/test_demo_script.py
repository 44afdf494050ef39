"""scripts/demo.sh seen through a stand-in Python: what its install step asks pip for, and its two
problems side by side."""
import os
import subprocess
import time

import pytest

from tests.support import ROOT

# Answers the demo's torch probe with $TORCH_VERSION (or fails, as a Python without torch does) and
# its requirements check with $UNMET, records the next call (pip's, or the first step's when nothing
# is missing), then stops the demo there.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -c ]; then
    [ -n "$TORCH_VERSION" ] && echo "$TORCH_VERSION" && exit 0
    exit 1
fi
if [ "$1" = scripts/unmet_requirements.py ]; then
    printf '%s' "$UNMET"
    exit 0
fi
echo "$@" > "$NEXT_CALL"
exit 3
"""


def demo_through(tmp_path, fake_python: str, **env) -> subprocess.CompletedProcess:
    """scripts/demo.sh into tmp_path/out with `fake_python` as its Python and `env` added."""
    python = tmp_path / "python"
    python.write_text(fake_python)
    python.chmod(0o755)
    return subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHON": str(python), **env})


def first_call_after_the_check(tmp_path, installed: str, unmet: str) -> list:
    result = demo_through(tmp_path, FAKE_PYTHON, TORCH_VERSION=installed, UNMET=unmet,
                          NEXT_CALL=str(tmp_path / "call"))
    assert result.returncode == 3, result.stderr
    return (tmp_path / "call").read_text().split()


@pytest.mark.parametrize("installed, kept", [("2.5.1+cu121", "torch==2.5.1"), ("", None)])
def test_the_demo_never_lets_pip_replace_the_torch_already_installed(tmp_path, installed, kept):
    pip = first_call_after_the_check(tmp_path, installed, unmet="tokenizers>=0.15\n")
    assert pip[:3] == ["-m", "pip", "install"] and "requirements.txt" in pip
    assert [a for a in pip if a.startswith("torch")] == ([kept] if kept else [])


def test_the_demo_skips_pip_when_nothing_is_missing(tmp_path):
    assert first_call_after_the_check(tmp_path, "2.14.1", unmet="")[0] == "scripts/run_steps.py"


# Every step succeeds at once, but for the first step of each problem: $PROBLEM1 or $PROBLEM2 is run
# there (problem 1's makes the set with --masks, problem 2's the scenes with --captions). Each call
# is recorded in $CALLS.
STEPS_PYTHON = """#!/usr/bin/env bash
[ "$1" = -c ] && exit 1
[ "$1" = scripts/unmet_requirements.py ] && exit 0
echo "$@" >> "$CALLS"
case "$*" in
    *--masks*) eval "$PROBLEM1" ;;
    *--captions*) eval "$PROBLEM2" ;;
esac
exit 0
"""


def run_demo(tmp_path, problem1: str, problem2: str):
    result = demo_through(tmp_path, STEPS_PYTHON, PROBLEM1=problem1, PROBLEM2=problem2, CALLS=str(tmp_path / "calls"))
    return result, (tmp_path / "calls").read_text()


def test_a_failed_problem_2_fails_the_demo_after_problem_1_with_its_log(tmp_path):
    result, calls = run_demo(tmp_path, problem1="", problem2="echo 'scenes failed' >&2; exit 5")
    assert result.returncode == 5
    assert "error: problem 2 stopped (exit status 5)" in result.stderr
    assert "scenes failed" in result.stdout  # its log, printed after problem 1's steps
    assert "check_demo.py" not in calls and calls.count("run_steps.py") == 3  # problem 1 ran to its end


def test_a_failed_problem_1_stops_problem_2_at_once(tmp_path):
    started = time.monotonic()
    result, _ = run_demo(tmp_path, problem1="exit 4", problem2="exec sleep 41.5")
    assert result.returncode == 4 and time.monotonic() - started < 30
    time.sleep(0.5)
    still = subprocess.run(["pgrep", "-f", "sleep 41.5"], capture_output=True, text=True).stdout
    assert still == "", "problem 2 kept running"
