"""Print each line of the requirement files that the installed packages do not meet, nothing when all
are met: scripts/demo.sh asks pip to install only then, since pip takes seconds to find that
nothing is missing.

    python scripts/unmet_requirements.py requirements.txt

A requirement is met when a distribution of its name is installed at a version its specifier allows
(a local build such as torch 2.14.1+cu130 meets torch>=2.4) or when its environment marker excludes
this machine. Only the standard library and `packaging` (pip's own copy where it is not installed)
are imported, so the check costs a fraction of a second.
"""
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # a bare Python: pip carries its own copy
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement


def unmet(lines) -> list:
    """The requirement lines (comments and blanks skipped) that the installed packages do not meet; a
    line that is no requirement counts as unmet, so that pip reports it."""
    missing = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            missing.append(text)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(text)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(text)
    return missing


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python scripts/unmet_requirements.py REQUIREMENTS_FILE...", file=sys.stderr)
        return 2
    lines = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as stream:
                lines += stream.read().splitlines()
        except OSError as err:
            print(f"error: cannot read {path}: {err.strerror or err}", file=sys.stderr)
            return 2
    for text in unmet(lines):
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
