"""Editing bank files from the browser: validate first, write atomically, keep every version."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..bank.catalog import load_catalog
from ..bank.loader import Problem
from ..bank.validate import check_item, check_quiz
from ..models import BankFileVersion
from ..offload import in_thread
from .attempts import ServiceError, now
from .banks import sync_catalog

MAX_BANK_BYTES = 1024 * 1024


class EditRefused(ServiceError):
    """An invalid file: nothing was written; ``problems`` say why, with line numbers."""

    def __init__(self, problems: list[Problem]):
        super().__init__(422, f"{sum(p.severity == 'error' for p in problems)} errors; nothing was saved")
        self.problems = problems


def bank_files(banks: Path) -> list[str]:
    """Every bank and quiz file, relative to the banks folder."""
    root = banks.resolve()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


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


def read(banks: Path, rel: str) -> str:
    path = resolve(banks, rel)
    if not path.is_file():
        raise ServiceError(404, f"no bank file {rel!r}")
    return path.read_text(encoding="utf-8")


@in_thread  # seconds of CPU: off the gevent worker's event loop
def check_candidate(banks: Path, rel: str, text: str, seeds: int = 200) -> list[Problem]:
    """Validate the banks as they would be with ``rel`` replaced by ``text``; problems of every file."""
    target = resolve(banks, rel)
    root = banks.resolve()
    with tempfile.TemporaryDirectory(prefix="qe-edit-") as tmp:
        copy = Path(tmp) / "banks"
        for f in bank_files(banks):
            dst = copy / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes((root / f).read_bytes())
        edited = copy / target.relative_to(root)
        edited.parent.mkdir(parents=True, exist_ok=True)
        edited.write_text(text, encoding="utf-8")
        cat = load_catalog([copy])
        problems = list(cat.problems)
        for item in cat.items.values():
            if Path(item.path) == edited:  # the other files were valid already
                problems += check_item(item, seeds)
        for quiz in cat.quizzes.values():
            problems += check_quiz(quiz, cat)
    for p in problems:
        p.path = str(Path(p.path).relative_to(copy)) if p.path.startswith(str(copy)) else p.path
    return sorted(problems, key=lambda p: (p.path != rel, p.path, p.mark.line, p.mark.col))


def _record(s: Session, rel: str, text: str, user_id: int | None, note: str) -> BankFileVersion:
    v = BankFileVersion(path=rel, content=text, sha256=hashlib.sha256(text.encode()).hexdigest(), saved_by=user_id,
                        saved_at=now(), note=note)
    s.add(v)
    s.flush()
    return v


def save(s: Session, banks: Path, rel: str, text: str, user_id: int) -> BankFileVersion:
    """Validate, then write atomically and reload the banks; refuse (nothing written) on any error."""
    if len(text.encode()) > MAX_BANK_BYTES:
        raise ServiceError(413, "a bank file is limited to 1 MiB")
    text = text.replace("\r\n", "\n")
    path = resolve(banks, rel)
    problems = check_candidate(banks, rel, text)
    if any(p.severity == "error" for p in problems):
        raise EditRefused(problems)
    if path.exists() and not s.scalar(select(BankFileVersion.id).where(BankFileVersion.path == rel).limit(1)):
        _record(s, rel, path.read_text(encoding="utf-8"), None, "as found on disk before the first edit")
    version = _record(s, rel, text, user_id, "saved in the editor")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_catalog(s, load_catalog([banks]))
    return version


def history(s: Session, rel: str) -> list[BankFileVersion]:
    return list(s.scalars(select(BankFileVersion).where(BankFileVersion.path == rel)
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
