"""scripts/demo.sh's install step: what it asks pip for, seen through a stand-in Python."""
import os
import subprocess

import pytest

from tests.support import ROOT

# Answers the demo's torch probe with $TORCH_VERSION (or fails, as a Python without torch does),
# and records what pip was asked to install, then stops the demo there.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -c ]; then
    [ -n "$TORCH_VERSION" ] && echo "$TORCH_VERSION" && exit 0
    exit 1
fi
echo "$@" > "$PIP_ARGS"
exit 3
"""


@pytest.mark.parametrize("installed, kept", [("2.5.1+cu121", "torch==2.5.1"), ("", None)])
def test_the_demo_never_lets_pip_replace_the_torch_already_installed(tmp_path, installed, kept):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "TORCH_VERSION": installed, "PIP_ARGS": str(tmp_path / "pip")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(tmp_path / "out")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    pip = (tmp_path / "pip").read_text().split()
    assert pip[:3] == ["-m", "pip", "install"] and "requirements.txt" in pip
    assert [a for a in pip if a.startswith("torch")] == ([kept] if kept else [])
