"""scripts/unmet_requirements.py: which requirement and constraint lines the installed packages do not
meet, the check that lets demo.sh and test.sh skip pip's seconds when nothing is missing."""
from importlib.metadata import version

from unmet_requirements import main, unmet


def test_unmet_requirements_names_what_is_missing_or_too_old(tmp_path):
    lines = ["# a comment", "", "numpy>=1.0", "numpy>=999  # too old", "no-such-package-here>=1",
             'old-only; python_version < "3.0"', "torch>=2.4"]
    assert unmet(lines) == ["numpy>=999", "no-such-package-here>=1"]  # a local build (+cu130) meets >=
    (tmp_path / "r.txt").write_text("\n".join(lines))
    assert main([str(tmp_path / "r.txt")]) == 0 and main([str(tmp_path / "missing.txt")]) == 2


def test_a_file_that_cannot_be_read_or_is_not_text_is_one_line(tmp_path, capsys):
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    for name, reason in (("missing.txt", "No such file or directory"), ("image.png", "it is not a text file")):
        assert main(["--constraints", str(tmp_path / name), str(tmp_path / name)]) == 2
        assert capsys.readouterr().err == f"error: cannot read {tmp_path / name}: {reason}\n"


def test_unmet_constraints_are_installed_packages_at_another_version_and_required_ones_missing():
    numpy = version("numpy")
    pins = [f"numpy=={numpy}", "scipy==0.1", "not-installed-anywhere==1.0", "required-but-missing==2.0"]
    assert unmet(["numpy>=1", "scipy>=1"], pins) == ["scipy==0.1"]  # pip would move scipy to its pin
    assert unmet(["required-but-missing"], pins[2:]) == ["required-but-missing", "required-but-missing==2.0"]
