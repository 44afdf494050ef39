"""The first import of every entry point: one line, never a traceback, for bad input and for Ctrl-C.

`run_main(main)` runs a script's `main`, prints a `UserError` as `error: ...` and exits with status 2,
and Ctrl-C as `error: interrupted` with status 130. A path given with a name longer than the file
system takes is bad input too, wherever it is first touched (Python's `Path.exists` raises for it).
Importing this module is the one side effect it exists for: it installs the same report of Ctrl-C for
the slow imports (torch) that follow it at the top of a script, before `run_main` is reached. Nothing
else in the repository changes global state when imported.
"""
import errno
import sys
from typing import Callable

from .io import UserError


def _report_interrupt(kind, value, traceback, _default=sys.excepthook):
    """Ctrl-C outside `run_main` (during the imports at the top of a script): one line, no traceback."""
    if issubclass(kind, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr, flush=True)
    else:
        _default(kind, value, traceback)


sys.excepthook = _report_interrupt


def user_message(err: UserError) -> str:
    """The error's one line. A DataLoader worker's error reaches the main process as a new exception of
    the same type whose text is the worker's whole traceback; its last line holds the message."""
    text = str(err)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(f"{UserError.__name__}: ", 1)[-1]
    return text


def run_main(main: Callable[[], object]) -> None:
    try:
        main()
    except UserError as err:
        print(f"error: {user_message(err)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        print(f"error: {err.filename}: a name in this path is longer than the file system takes; give a "
              "shorter one", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
