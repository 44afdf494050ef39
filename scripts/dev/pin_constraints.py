"""Write constraints.txt: the exact version of every package that requirements.txt and
requirements-test.txt pull in, read from this Python's installed packages. Run it after the test
suite passed with the versions installed here; `scripts/test.sh` then installs exactly these.

  python scripts/dev/pin_constraints.py            (writes constraints.txt at the repository's root)
"""
import argparse
import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT_FILES = ("requirements.txt", "requirements-test.txt")
# pip and its build tools are the installer's, not the suite's
NOT_PINNED = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_of(files) -> list:
    lines = [line.split("#")[0].strip() for file in files for line in Path(file).read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def pinned_closure(roots: list) -> dict:
    """{canonical name: installed version} of `roots` and everything they require, transitively,
    under this machine's environment markers (extras a requirement names included)."""
    pinned, queue = {}, [(r, "") for r in roots]
    while queue:
        requirement, extra = queue.pop()
        environment = {**default_environment(), "extra": extra}
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonical(requirement.name)
        if name in pinned or name in NOT_PINNED:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"error: {requirement.name} is required but not installed; "
                             "install the requirements first")
        pinned[name] = distribution.version
        for extra_name in [""] + sorted(requirement.extras):
            queue += [(Requirement(line), extra_name) for line in distribution.requires or []]
    return pinned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "constraints.txt"),
                        help="file to write (default: constraints.txt at the repository's root)")
    args = parser.parse_args(argv)
    pinned = pinned_closure(requirements_of(ROOT / f for f in REQUIREMENT_FILES))
    header = ("# The exact versions the test suite last passed with (scripts/dev/pin_constraints.py).\n"
              "# scripts/test.sh installs with them; UNPINNED=1 bash scripts/test.sh tests the newest instead.\n")
    Path(args.out).write_text(header + "".join(f"{name}=={version}\n" for name, version in sorted(pinned.items())))
    print(f"{len(pinned)} packages pinned in {args.out}")


if __name__ == "__main__":
    main()
