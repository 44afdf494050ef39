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


def fake_distribution(folder, name: str, *requires: str) -> None:
    """An installed distribution `name` 1.0 in `folder` (a dist-info, as pip leaves one) declaring `requires`."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_a_dependency_missing_at_any_depth_is_unmet_and_one_for_another_platform_or_extra_is_not(tmp_path,
                                                                                                  monkeypatch):
    """pip would install a declared dependency that is missing or too old, however deep: so it counts."""
    fake_distribution(tmp_path, "top-package", "middle-package>=1", 'windows-only; sys_platform == "win32"',
                      'fancy-extra; extra == "fancy"')
    fake_distribution(tmp_path, "middle-package", "deep-missing>=2", "numpy>=999", "top-package")  # a cycle too
    monkeypatch.syspath_prepend(str(tmp_path))
    assert unmet(["top-package"]) == ["deep-missing>=2 (of middle-package)", "numpy>=999 (of middle-package)"]
    assert unmet(["top-package[fancy]"])[-1] == "fancy-extra (of top-package)"
