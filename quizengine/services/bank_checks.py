"""The instructor pages' view of the banks: loaded at once, every item checked in the background.

Checking every item on 200 seeds costs tens of CPU-seconds, far too long for a request (a page
that did it timed out under load). A page gets the catalog at once, with its loading, schema and
quiz problems, and each item's own checks as a child process finishes them. A process, not a
thread: a thread computing for half a minute would hold the worker's GIL against the class's
requests, while a child at niceness 10 yields the cores to them.

Each item's problems are stored in the instance folder, keyed by the item's own lines of YAML, its
bank's topic and source, the validator's code and the number of seeds; their places are kept
relative to the item's first line. So a restart, another worker of the host, the editor checking a
save, or an edit that moved the item reuses what was checked before: only an item whose text changed
is checked again. A lock file lets one child of a host check at a time; another (started by another
worker) waits for it and then finds everything stored. Every board reads what was stored when
a page asks (``refresh``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bank.catalog import BankItem, Catalog, load_catalog
from ..bank.loader import Mark, Problem
from ..constants import VALIDATION_SEEDS
from ..offload import in_thread

CODE_DIRS = ("bank", "calc")  # the validator's code: a change to any of it makes every stored result stale
_PACKAGE = Path(__file__).resolve().parent.parent
_code_stamp: str | None = None


def check_item(item: BankItem, seeds: int) -> list[Problem]:
    """bank.validate's check, imported when first used: the validator (and multiprocessing) stays out of
    a worker until an instructor's page needs it."""
    from ..bank.validate import check_item as check

    return check(item, seeds)


def check_quiz(quiz: Any, cat: Catalog) -> list[Problem]:
    """bank.validate's quiz check, imported when first used (as ``check_item``)."""
    from ..bank.validate import check_quiz as check

    return check(quiz, cat)


def code_stamp() -> str:
    """A digest of the validator's source files (computed once per process)."""
    global _code_stamp
    if _code_stamp is None:
        h = hashlib.sha256()
        for d in CODE_DIRS:
            for f in sorted((_PACKAGE / d).rglob("*.py")):
                h.update(str(f.relative_to(_PACKAGE)).encode() + b"\0" + f.read_bytes())
        _code_stamp = h.hexdigest()
    return _code_stamp


@dataclass
class Board:
    """One banks folder as the pages see it; ``checked`` fills in while the background runs."""

    signature: tuple
    catalog: Catalog
    seeds: int
    store: Path
    keys: dict[str, tuple[str, int]]  # item id -> (its stored results' key, its first line)
    checked: dict[str, list[Problem]] = field(default_factory=dict)  # item id -> its own problems
    fixed: list[Problem] = field(default_factory=list)  # loading, schema and quiz problems
    runner: subprocess.Popen | None = None  # the child checking what was not stored

    @property
    def total(self) -> int:
        return len(self.catalog.items)

    @property
    def complete(self) -> bool:
        return len(self.checked) >= self.total

    def problems(self) -> list[Problem]:
        """Every problem found so far, sorted by place as `validate` prints them."""
        found = list(self.fixed)
        for item_id in self.catalog.items:
            found += self.checked.get(item_id, [])
        return sorted(found, key=lambda p: (p.path, p.mark.line, p.mark.col, p.message))

    def item_problems(self, item: BankItem) -> list[Problem]:
        """One item's problems: from the background's results, else checked now (one item: a second or so)."""
        if item.id not in self.checked:
            self.checked[item.id] = in_thread(checked)(item, self.keys[item.id], self.seeds, self.store)
        return [p for p in self.fixed if p.item_id == item.id] + self.checked[item.id]

    def refresh(self) -> "Board":
        """Take in what the child (or another worker's) stored meanwhile: a file read per item still unchecked."""
        if self.runner is not None:
            self.runner.poll()  # reaps it once it has ended
        if not self.complete:
            for item_id, (key, first) in self.keys.items():
                if item_id not in self.checked:
                    found = _read(self.store, key, self.catalog.items[item_id], first)
                    if found is not None:
                        self.checked[item_id] = found
        return self

    def wait(self) -> "Board":
        """Until the child has checked every item (for tests; a page never waits)."""
        if self.runner is not None:
            self.runner.wait()
        return self.refresh()

    def stop(self) -> None:
        """The banks changed: the child's remaining work is for items that may be gone."""
        if self.runner is not None and self.runner.poll() is None:
            self.runner.terminate()
            self.runner.wait()


_BOARDS: dict[str, Board] = {}
_LOCK = threading.Lock()


def signature(banks: Path) -> tuple:
    files = sorted(p for p in banks.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def board(banks: Path, store: Path, seeds: int = VALIDATION_SEEDS) -> Board:
    """The banks' board, loaded now if they changed; checks neither stored nor done start in the background."""
    key, sig = str(banks.resolve()), signature(banks)
    with _LOCK:
        hit = _BOARDS.get(key)
        if hit is not None and hit.signature == sig and hit.seeds == seeds:
            return hit
    new = in_thread(_load)(banks, sig, seeds, store)  # a third of a second of CPU: off the event loop
    with _LOCK:
        old = _BOARDS.get(key)
        if old is not None and old.signature == sig and old.seeds == seeds:
            return old  # another request loaded the same banks meanwhile
        _BOARDS[key] = new
    if old is not None:
        old.stop()
    if not new.complete:
        new.runner = _spawn(banks, store, seeds)
    return new


def _spawn(banks: Path, store: Path, seeds: int) -> subprocess.Popen:
    store.mkdir(parents=True, exist_ok=True)
    with open(store / "checks.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-c", f"import sys; from {__name__} import run; run(*sys.argv[1:])",
                                 str(banks.resolve()), str(store.resolve()), str(seeds)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)


def _load(banks: Path, sig: tuple, seeds: int, store: Path) -> Board:
    cat = load_catalog([banks])
    fixed = list(cat.problems)
    for quiz in cat.quizzes.values():
        fixed += check_quiz(quiz, cat)
    b = Board(sig, cat, seeds, store, item_keys(list(cat.items.values()), seeds), fixed=fixed)
    for item_id, (key, first) in b.keys.items():
        found = _read(store, key, cat.items[item_id], first)
        if found is not None:
            b.checked[item_id] = found
    return b


def item_keys(items: list[BankItem], seeds: int) -> dict[str, tuple[str, int]]:
    """Each item's key (a digest of its own lines and what else its checks read) and its first line."""
    stamp = f"{code_stamp()}:{seeds}"
    out: dict[str, tuple[str, int]] = {}
    by_file: dict[str, list[BankItem]] = {}
    for item in items:
        by_file.setdefault(item.path, []).append(item)
    for path, mine in by_file.items():
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
        starts = sorted({item.doc.marks[item.where].line for item in mine} | {len(lines) + 1})
        for item in mine:
            first = item.doc.marks[item.where].line
            last = starts[starts.index(first) + 1] - 1
            text = "".join(lines[first - 1:last])
            blob = "\0".join((stamp, item.topic, item.bank_source or "", text))
            out[item.id] = (hashlib.sha256(blob.encode()).hexdigest(), first)
    return out


def checked(item: BankItem, key: tuple[str, int], seeds: int, store: Path | None) -> list[Problem]:
    """The item's problems: as stored under its key, else checked now and stored."""
    found = _read(store, key[0], item, key[1]) if store is not None else None
    if found is None:
        found = check_item(item, seeds)
        if store is not None:
            _write(store, key[0], found, key[1])
    return found


def _read(store: Path, key: str, item: BankItem, first: int) -> list[Problem] | None:
    try:
        rows = json.loads((store / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return [Problem(item.path, Mark(first + r["line"], r["col"]), r["severity"], r["message"], item.id) for r in rows]


def _write(store: Path, key: str, problems: list[Problem], first: int) -> None:
    rows = [{"line": p.mark.line - first, "col": p.mark.col, "severity": p.severity, "message": p.message}
            for p in problems]
    store.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=store, prefix=".checks.")
    with os.fdopen(fd, "w") as out:
        json.dump(rows, out)
    os.replace(tmp, store / f"{key}.json")


def run(banks: Path | str, store: Path | str, seeds: int | str) -> int:
    """The child: check every item whose results are not stored, storing each as it finishes.

    Prints a line per item checked (into the store's ``checks.log``). Returns how many it checked.
    """
    banks, store, seeds = Path(banks), Path(store), int(seeds)
    try:
        os.nice(10)  # the class's requests get the cores first
    except OSError:
        pass
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker's child is checking: wait, then find its results
        cat = load_catalog([banks])
        keys = item_keys(list(cat.items.values()), seeds)
        done = 0
        for item in cat.items.values():
            key, first = keys[item.id]
            if _read(store, key, item, first) is None:
                _write(store, key, check_item(item, seeds), first)
                print(f"checked {item.id}", flush=True)
                done += 1
    return done
