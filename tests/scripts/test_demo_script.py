"""scripts/demo.sh's install step: what it asks pip for, seen through a stand-in Python."""
import os
import subprocess

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


def first_call_after_the_check(tmp_path, installed: str, unmet: str) -> list:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "TORCH_VERSION": installed, "UNMET": unmet,
           "NEXT_CALL": str(tmp_path / "call")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(tmp_path / "out")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    return (tmp_path / "call").read_text().split()


@pytest.mark.parametrize("installed, kept", [("2.5.1+cu121", "torch==2.5.1"), ("", None)])
def test_the_demo_never_lets_pip_replace_the_torch_already_installed(tmp_path, installed, kept):
    pip = first_call_after_the_check(tmp_path, installed, unmet="tokenizers>=0.15\n")
    assert pip[:3] == ["-m", "pip", "install"] and "requirements.txt" in pip
    assert [a for a in pip if a.startswith("torch")] == ([kept] if kept else [])


def test_the_demo_skips_pip_when_nothing_is_missing(tmp_path):
    assert first_call_after_the_check(tmp_path, "2.14.1", unmet="")[0] == "scripts/run_steps.py"


def test_unmet_requirements_names_what_is_missing_or_too_old(tmp_path):
    from unmet_requirements import main, unmet

    lines = ["# a comment", "", "numpy>=1.0", "numpy>=999  # too old", "no-such-package-here>=1",
             'old-only; python_version < "3.0"', "torch>=2.4"]
    assert unmet(lines) == ["numpy>=999", "no-such-package-here>=1"]  # a local build (+cu130) meets >=
    (tmp_path / "r.txt").write_text("\n".join(lines))
    assert main([str(tmp_path / "r.txt")]) == 0 and main([str(tmp_path / "missing.txt")]) == 2
