"""Results written as they are made, so that a rerun continues them and never mixes them with results
of other inputs or settings: the one mechanism of eval_grounding.py's cache and eval_captions.py's
results file.

A settings record says what the results depend on: the flags that decide them and what identifies
each input, a file by its content's hash (a replaced weights file is another model, a moved one the
same), a folder by its absolute path. It is written with the first result, not before, so a run that
fails before it has made anything leaves nothing that would refuse its corrected rerun. A rerun
compares its record with the one kept and refuses any difference, naming it. A lock beside the
results keeps a second run out while one writes, and a file that is not the tool's own is never
taken for it.
"""
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

from .io import UserError, exclusive_lock, make_folder, remove_temporaries, sidecar_name, warn, write_text_atomic

_MISSING = object()


def file_identity(path) -> str:
    """What tells a file's content from any other's: its SHA-256 (streamed, so a large weights file costs
    a second or so, and no memory)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    return f"sha256:{digest.hexdigest()}"


def folder_identity(path) -> str:
    return str(Path(path).resolve())


def refuse_other_settings(recorded, settings: dict, results, source, advice: str) -> None:
    """Refuse completing `results` when the settings `recorded` for it (in `source`) are not `settings`,
    naming the first that differs."""
    if not isinstance(recorded, dict):
        raise UserError(f"{source} is not a settings record (a JSON object); {advice}")
    for key in [*settings, *(key for key in recorded if key not in settings)]:
        was, now = recorded.get(key, _MISSING), settings.get(key, _MISSING)
        if was != now:
            raise UserError(f"{results} was begun with {key} {_shown(was)} ({source}), this run asks for "
                            f"{_shown(now)}: give the same inputs and settings to complete it, or {advice}")


def _shown(value) -> str:
    return "(none recorded)" if value is _MISSING else json.dumps(value)


@contextmanager
def held(results, program: str, flag: str):
    """Hold the lock beside `results` for the block (a second run on it stops with one line), and remove
    the temporaries a killed run left."""
    results = Path(results)
    lock = make_folder(results.parent, purpose=f"write {results}") / sidecar_name(results, "lock")
    with exclusive_lock(lock, program, f"{results} is being written by another run",
                        f"wait for it to end or choose another {flag}"):
        for tmp in remove_temporaries(results):
            print(f"removed {tmp.name}, left by a run that was stopped while writing")
        yield results


@contextmanager
def results_cache(path, settings: dict, program: str, flag: str, key: str, is_result, shape: str):
    """The `ResultsCache` at `path` (None: kept in memory only), held (`held`) for the block."""
    if path is None:
        yield ResultsCache(None, settings, program, flag, key, is_result, shape)
        return
    with held(path, program, flag):
        yield ResultsCache(path, settings, program, flag, key, is_result, shape)


class ResultsCache:
    """Per-item results in a file of JSON lines: the settings record first, then one object per item,
    appended as items are done and found again by their `key` field. Open it with `results_cache`.

    Every item is an object with an int `key` for which `is_result(item)` holds, as `shape` describes
    it: a line that is not, or is not JSON, is one line naming it (never a failure where the item is
    used), except a last line cut short by a crash, which is dropped (and the file rewritten without
    it). A file whose first line is no settings record is not this cache and is refused, never
    overwritten.
    """

    def __init__(self, path, settings: dict, program: str, flag: str, key: str, is_result, shape: str):
        self.path = Path(path) if path else None
        self.settings, self.program, self.flag, self.key = settings, program, flag, key
        self.items = {}
        self._written = False
        if self.path is not None and self.path.exists():
            self._read(is_result, shape)

    def _read(self, is_result, shape: str) -> None:
        advice = f"delete it to start over, or give another {self.flag}"
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{self.flag} {self.path} cannot be read ({getattr(err, 'strerror', None) or err}) "
                            f"or is not a results cache of {self.program}; {advice}") from None
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines) or number == 1:
                    raise UserError(f"{self.flag} {self.path}: line {number} is not JSON, so it is not a results "
                                    f"cache of {self.program}; {advice}") from None
                warn(f"{self.flag} {self.path}: its last line was cut short; that item is redone")
        if not records or not isinstance(records[0], dict) or list(records[0]) != ["settings"] \
                or not isinstance(records[0]["settings"], dict):
            raise UserError(f"{self.flag} {self.path} is not a results cache of {self.program} (its first line "
                            f"holds no settings record); {advice}")
        refuse_other_settings(records[0]["settings"], self.settings, self.path, "its line 1",
                              f"give another {self.flag}")
        for number, record in enumerate(records[1:], 2):
            if not (isinstance(record, dict) and type(record.get(self.key)) is int and is_result(record)):
                raise UserError(f"{self.flag} {self.path}: line {number} is not a result of {self.program} "
                                f"({shape}); {advice}")
            self.items[record[self.key]] = record
        self._written = True
        if len(records) < len(lines):
            self._rewrite()

    def _rewrite(self) -> None:
        lines = [json.dumps({"settings": self.settings})] + [json.dumps(r) for r in self.items.values()]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def add(self, record: dict) -> None:
        self.items[record[self.key]] = record
        if self.path is None:
            return
        if not self._written:  # the settings go with the first result
            self._rewrite()
            self._written = True
            return
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
