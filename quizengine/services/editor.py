"""Editing bank files from the browser: validate first (no lock held), write atomically, keep every version."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..bank.catalog import Catalog, load_catalog, yaml_files
from ..bank.loader import Problem
from ..constants import VALIDATION_SEEDS
from ..db import Database
from ..models import BankFileVersion
from ..offload import in_thread
from .bank_checks import check_quiz, checked, item_keys
from .banks import sync_catalog
from .clock import now
from .errors import ServiceError

MAX_BANK_BYTES = 1024 * 1024


class EditRefused(ServiceError):
    """An invalid file: nothing was written; ``problems`` say why, with line numbers."""

    def __init__(self, problems: list[Problem]):
        super().__init__(422, f"{sum(p.severity == 'error' for p in problems)} errors; nothing was saved")
        self.problems = problems


class FileTooLarge(ServiceError):
    """A file over MAX_BANK_BYTES: nothing was written."""

    def __init__(self, size: int):
        super().__init__(413, f"the file is {size / 1024 / 1024:.2f} MiB; a bank file is limited to 1 MiB: "
                              "split it into two files (each is a bank of its own)")


def bank_files(banks: Path) -> list[str]:
    """Every bank and quiz file, relative to the banks folder (regular files only: symlinks are skipped)."""
    root = banks.resolve()
    return [str(p.relative_to(root)) for p in yaml_files(root)[0]]


def resolve(banks: Path, rel: str) -> Path:
    """The file ``rel`` inside the banks folder; anything that would leave it is refused (400)."""
    root = banks.resolve()
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or ".." in Path(rel).parts:
        raise ServiceError(400, f"{rel!r} is not a bank file path")
    if Path(rel).suffix not in (".yaml", ".yml"):
        raise ServiceError(400, f"{rel!r}: bank files end in .yaml")
    path = (root / rel).resolve()
    if root not in path.parents:
        raise ServiceError(400, f"{rel!r} is outside the banks folder")
    return path


def canonical(banks: Path, rel: str) -> str:
    """The key of a bank file in the history: its resolved path relative to the banks folder
    (``./x.yaml``, ``quizzes//q.yaml`` and a link to ``x.yaml`` are all the one file)."""
    return str(resolve(banks, rel).relative_to(banks.resolve()))


def read(banks: Path, rel: str) -> str:
    path = resolve(banks, rel)
    if not path.is_file():
        raise ServiceError(404, f"no bank file {rel!r}")
    return path.read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Candidate:
    """The banks as they would be after an edit, validated (outside any lock)."""

    problems: list[Problem]
    catalog: Catalog
    snapshot: dict[str, str]  # every other file as validated against: rel -> sha256 of its bytes


def _snapshot(banks: Path, skip: str) -> dict[str, str]:
    root = banks.resolve()
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in bank_files(banks) if f != skip}


@in_thread  # seconds of CPU: off the gevent worker's event loop
def validate_candidate(banks: Path, rel: str, text: str, seeds: int = VALIDATION_SEEDS,
                       store: Path | None = None) -> Candidate:
    """Validate the banks as they would be with ``rel`` replaced by ``text``; problems of every file.

    With ``store`` (the bank pages' stored checks), an item whose lines the edit left as they were
    is not checked again: saving a 50-item file after changing one item checks that one.
    """
    target = resolve(banks, rel)
    root = banks.resolve()
    key = canonical(banks, rel)
    with tempfile.TemporaryDirectory(prefix="qe-edit-") as tmp:
        copy = Path(tmp) / "banks"
        snapshot = {}
        for f in bank_files(banks):
            dst = copy / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = (root / f).read_bytes()
            dst.write_bytes(data)
            if f != key:
                snapshot[f] = hashlib.sha256(data).hexdigest()
        edited = copy / target.relative_to(root)
        edited.parent.mkdir(parents=True, exist_ok=True)
        edited.write_text(text, encoding="utf-8")
        cat = load_catalog([copy])
        problems = list(cat.problems)
        mine = [item for item in cat.items.values() if Path(item.path) == edited]  # the others were valid already
        keys = item_keys(mine, seeds)
        for item in mine:
            problems += checked(item, keys[item.id], seeds, store)
        for quiz in cat.quizzes.values():
            problems += check_quiz(quiz, cat)
    for p in problems:
        p.path = str(Path(p.path).relative_to(copy)) if p.path.startswith(str(copy)) else p.path
    problems.sort(key=lambda p: (p.path != key, p.path, p.mark.line, p.mark.col))
    return Candidate(problems, cat, snapshot)


def _record(s: Session, rel: str, text: str, user_id: int | None, note: str) -> BankFileVersion:
    v = BankFileVersion(path=rel, content=text, sha256=_sha256(text), saved_by=user_id, saved_at=now(), note=note)
    s.add(v)
    s.flush()
    return v


def _newest(s: Session, key: str) -> BankFileVersion | None:
    return s.scalar(select(BankFileVersion).where(BankFileVersion.path == key)
                    .order_by(BankFileVersion.id.desc()).limit(1))


def _record_disk(s: Session, key: str, path: Path) -> str | None:
    """Record the file as it is on disk unless that is its newest version; return its text."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    newest = _newest(s, key)
    if newest is None or newest.sha256 != _sha256(text):
        _record(s, key, text, None, "as found on disk before this edit")
    return text


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes 0600: keep the file's own mode (a new file gets the usual 0644)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash of the machine
    finally:
        os.close(dir_fd)


SAVE_ATTEMPTS = 3


def save(db: Database, banks: Path, rel: str, text: str, user_id: int | None,
         seeds: int = VALIDATION_SEEDS, store: Path | None = None) -> BankFileVersion:
    """Validate (no lock held), then write the file, its history and the item versions in one short
    transaction; refuse (nothing written) on any error.

    If another file changed while this one was validated, the edit is validated again: the
    catalog stored is always the one that was checked.
    """
    if len(text.encode()) > MAX_BANK_BYTES:
        raise FileTooLarge(len(text.encode()))
    text = text.replace("\r\n", "\n")
    path, key = resolve(banks, rel), canonical(banks, rel)
    for _ in range(SAVE_ATTEMPTS):
        candidate = validate_candidate(banks, key, text, seeds, store)
        if any(p.severity == "error" for p in candidate.problems):
            raise EditRefused(candidate.problems)
        with db.write() as s:  # committed first: a crash later in the save can't lose the old content
            _record_disk(s, key, path)
        old, written = None, False
        try:
            with db.write() as s:
                if _snapshot(banks, key) != candidate.snapshot:
                    continue  # another save changed the banks meanwhile: validate again
                old = _record_disk(s, key, path)  # changed since the line above? (normally nothing to do)
                version = _record(s, key, text, user_id, "saved in the editor")
                sync_catalog(s, candidate.catalog)
                s.flush()
                # The rename is the last step before the commit; a kill -9 between the two is
                # repaired by reconcile() at the next start.
                _replace(path, text)
                written = True
            return version
        except BaseException:
            if written:  # the transaction rolled back: put the file back as the history has it
                if old is None:
                    path.unlink(missing_ok=True)
                else:
                    _replace(path, old)
            raise
    raise ServiceError(409, f"the bank files changed {SAVE_ATTEMPTS} times while {key} was being validated; "
                            "save again")


def reconcile(s: Session, banks: Path) -> list[str]:
    """Make the history agree with the files: record every bank file whose content is not its newest
    version (a save cut short between the rename and the commit, an edit made outside the editor,
    a file never recorded); file old rows under their resolved path. Return the files recorded."""
    for (typed,) in s.execute(select(BankFileVersion.path).distinct()).all():
        try:
            key = canonical(banks, typed)
        except ServiceError:
            continue  # not a path inside this banks folder: leave it as it is
        if key != typed:
            s.execute(update(BankFileVersion).where(BankFileVersion.path == typed).values(path=key))
    newest: dict[str, str] = {}
    for key, sha in s.execute(select(BankFileVersion.path, BankFileVersion.sha256).order_by(BankFileVersion.id)):
        newest[key] = sha
    recorded = []
    root = banks.resolve()
    for rel in bank_files(banks):
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the loader reports it
        if newest.get(rel) != _sha256(text):
            note = ("found on disk at startup: not the newest recorded version (a save cut short, "
                    "or an edit made outside the editor)") if rel in newest else "as found on disk at startup"
            _record(s, rel, text, None, note)
            recorded.append(rel)
    return recorded


def history(s: Session, key: str) -> list[BankFileVersion]:
    """The versions of one file, newest first; ``key`` is its canonical() path."""
    return list(s.scalars(select(BankFileVersion).where(BankFileVersion.path == key)
                          .order_by(BankFileVersion.id.desc())))


def version(s: Session, version_id: int) -> BankFileVersion:
    v = s.get(BankFileVersion, version_id)
    if v is None:
        raise ServiceError(404, f"no version {version_id}")
    return v


def diff(old: BankFileVersion | str, new: BankFileVersion | str, rel: str) -> list[str]:
    a = old.content if isinstance(old, BankFileVersion) else old
    b = new.content if isinstance(new, BankFileVersion) else new
    name_a = f"{rel}@{old.id}" if isinstance(old, BankFileVersion) else f"{rel} (on disk)"
    name_b = f"{rel}@{new.id}" if isinstance(new, BankFileVersion) else f"{rel} (on disk)"
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), name_a, name_b, lineterm=""))
