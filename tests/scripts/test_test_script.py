"""The test command: the README's is the one CI runs; it installs what the browser tests need, at the
versions the suite last passed with."""
import os
import subprocess

import pytest
from packaging.requirements import Requirement

from tests.support import ROOT

COMMAND = "bash scripts/test.sh"


def test_readme_and_ci_run_the_same_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert COMMAND in ci
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"\n{COMMAND} " in quick_start


def test_the_test_script_installs_playwright_chromium_and_opencvs_libgl():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "-r requirements-test.txt" in script and 'apt-get install -y -q "$@"' in script
    assert 'apt_install "the browser tests" chromium' in script and "libgl1" in script
    assert script.rstrip().endswith('exec $PY -m pytest -q -n auto "$@"')
    requirements = (ROOT / "requirements-test.txt").read_text().split()
    assert any(r.startswith("playwright") for r in requirements)
    assert any(r.startswith("pytest") for r in requirements)


# A stand-in Python for scripts/test.sh: its requirements check prints $UNMET, OpenCV imports, and
# every other call (pip's, then pytest's) is recorded in $CALLS, one line each.
FAKE_PYTHON = """#!/usr/bin/env bash
[ "$1" = scripts/unmet_requirements.py ] && printf '%s' "$UNMET" && exit 0
[ "$1" = -c ] && exit 0
echo "$@" >> "$CALLS"
"""


@pytest.mark.parametrize("unmet, unpinned, pip", [
    ("", "", None),  # everything at its pinned version: pip is not even asked
    ("numpy==2.3.4\n", "", "-m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt "
                           "-r requirements-test.txt"),
    ("", "1", "-m pip install -q --disable-pip-version-check --upgrade -r requirements.txt -r requirements-test.txt"),
])
def test_the_test_script_installs_the_pinned_versions_when_one_is_unmet_or_the_newest_when_asked(
        tmp_path, unmet, unpinned, pip):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("chromium", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PYTHON": str(bin_dir / "python"), "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "UNMET": unmet, "UNPINNED": unpinned, "CALLS": str(tmp_path / "calls")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "test.sh"), "-x"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ([pip] if pip else []) + ["-m pytest -q -n auto -x"]


def test_every_requirement_is_pinned_to_a_version_it_allows():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    for file in ("requirements.txt", "requirements-test.txt"):
        for line in (ROOT / file).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                requirement = Requirement(line)
                name = requirement.name.lower().replace("_", "-")
                assert name in pins, f"{requirement.name} of {file} is not in constraints.txt"
                assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} breaks {line}"
