"""The shell scripts as users call them: from any folder, and with --help."""
import os
import subprocess

import pytest

from tests.support import ROOT


def test_demo_takes_its_folder_from_where_it_is_called_and_refuses_an_earlier_demo(tmp_path):
    (tmp_path / "demo" / "run_a").mkdir(parents=True)
    # PYTHON=true: every step a no-op, so only the script's own logic runs.
    result = subprocess.run(["bash", ROOT / "scripts" / "demo.sh", "demo"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHON": "true"})
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip() == f"error: {tmp_path / 'demo'} already holds a demo; remove it or pass another folder"


@pytest.mark.parametrize("script, usage", [("p1_inference.sh", "IMG_DIR OUT_CSV [CKPT]"),
                                           ("p2_vis_caption.sh", "IMG_DIR OUT_DIR"),
                                           ("gpu_check.sh", "OUT_DIR [--dry_run]"),
                                           ("demo.sh", "bash scripts/demo.sh [OUT_DIR]"),
                                           ("test.sh", "bash scripts/test.sh [PYTEST ARGS...]")])
def test_help_of_a_shell_script_is_its_description_and_exits_0(tmp_path, script, usage):
    for flag in ("--help", "-h"):
        result = subprocess.run(["bash", ROOT / "scripts" / script, flag], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert usage in result.stdout and len(result.stdout.splitlines()) > 3
        assert not any(line.startswith(("#", "set ")) for line in result.stdout.splitlines())
    assert list(tmp_path.iterdir()) == []

