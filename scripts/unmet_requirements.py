"""usage: python scripts/unmet_requirements.py [--constraints FILE] REQUIREMENTS_FILE...

Print each line of the requirement files that the installed packages do not meet, nothing when all
are met: scripts/demo.sh and scripts/test.sh ask pip to install only then, since pip takes seconds
to find that nothing is missing.

A requirement is met when a distribution of its name is installed at a version its specifier allows
(a local build such as torch 2.14.1+cu130 meets torch>=2.4 and torch==2.14.1), and so are the
dependencies that the installed distributions declare, all the way down; or when its environment
marker excludes this machine. With --constraints (pip's -c file of exact versions), every
installed package that file pins must also be at its pinned version, as pip would make it; a package
it pins that is not installed counts only if a requirement names it. Only the standard library and
`packaging` (pip's own copy where it is not installed) are imported, so the check costs a fraction of
a second.
"""
import sys
from importlib.metadata import PackageNotFoundError, requires, version

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare Python: pip carries its own copy
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.utils import canonicalize_name


def _requirements(lines) -> list:
    """(text, Requirement or None) of each requirement line, comments and blanks skipped; None for a
    line that is no requirement."""
    parsed = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            parsed.append((text, Requirement(text)))
        except InvalidRequirement:
            parsed.append((text, None))
    return parsed


def _installed(name: str):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _applies(requirement, extras=()) -> bool:
    """Whether `requirement`'s environment marker, if any, holds here for a distribution installed with `extras`."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in (*extras, ""))


def _met(requirement) -> bool:
    """Whether a distribution of `requirement`'s name is installed at a version its specifier allows."""
    installed = _installed(requirement.name)
    return installed is not None and requirement.specifier.contains(installed, prereleases=True)


def _unmet_dependencies(requirement, walked: set) -> list:
    """'dependency (of package)' for each dependency, at any depth, that the installed distribution of
    `requirement` declares and that is missing or at a version it does not allow; `walked` holds the
    packages already walked, each walked once."""
    name = canonicalize_name(requirement.name)
    if name in walked:
        return []
    walked.add(name)
    try:
        declared = requires(requirement.name) or []
    except PackageNotFoundError:
        return []
    found = []
    for text in declared:
        try:
            dependency = Requirement(text)
        except InvalidRequirement:
            continue
        if not _applies(dependency, requirement.extras):
            continue
        if _met(dependency):
            found += _unmet_dependencies(dependency, walked)
        else:
            found.append(f"{dependency.name}{dependency.specifier} (of {requirement.name})")
    return found


def unmet(lines, constraints=()) -> list:
    """The requirement lines that the installed packages do not meet, then the `constraints` lines
    whose package is installed at another version (or required and missing). A line that is no
    requirement counts as unmet, so that pip reports it."""
    missing, required, walked = [], set(), set()
    for text, requirement in _requirements(lines):
        if requirement is None:
            missing.append(text)
            continue
        if not _applies(requirement):
            continue
        required.add(canonicalize_name(requirement.name))
        if _met(requirement):
            missing += _unmet_dependencies(requirement, walked)
        else:
            missing.append(text)
    for text, pin in _requirements(constraints):
        if pin is None:
            missing.append(text)
            continue
        if _installed(pin.name) is None:
            if canonicalize_name(pin.name) in required:
                missing.append(text)
        elif not _met(pin):
            missing.append(text)
    return missing


def _read_lines(paths) -> list:
    """The lines of the text files `paths`; ValueError, one line naming the file, for one that cannot be
    read or is not text."""
    lines = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as stream:
                lines += stream.read().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read {path}: {getattr(err, 'strerror', None) or 'it is not a text file'}") \
                from None
    return lines


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    constraints = []
    if args[0] == "--constraints":
        if len(args) < 3:
            print("usage: python scripts/unmet_requirements.py [--constraints FILE] REQUIREMENTS_FILE...",
                  file=sys.stderr)
            return 2
        constraints, args = [args[1]], args[2:]
    try:
        lines, pins = _read_lines(args), _read_lines(constraints)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for text in unmet(lines, pins):
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
