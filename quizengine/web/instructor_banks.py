"""Instructor pages for the banks: review with filters, item preview by seed, stress test, editor, history."""

from __future__ import annotations

import json
import random
from pathlib import Path

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for

from ..bank.variant import VariantError, make_variant
from ..constants import VALIDATION_SEEDS
from ..offload import in_thread
from ..services import bank_checks, charts, editor, review
from ..services.bank_index import STATES, bank_index
from ..services.errors import ServiceError
from ..services.preview import preview_data
from . import db, int_arg, reading
from .auth import instructor_required, principal

bp = Blueprint("banks", __name__, url_prefix="/instructor/banks")


# A bank file may be up to 1 MiB, more than the app's request limit: the editor's form may be larger,
# percent-encoded (up to 3 bytes a byte); the save then states the file's own limit. Set before the
# CSRF check (an app-wide before_request) reads the form: URL value preprocessors run first.
EDIT_REQUEST_BYTES = 3 * editor.MAX_BANK_BYTES + 64 * 1024


@bp.url_value_preprocessor
def larger_requests_for_the_editor(endpoint: str | None, values: dict | None) -> None:
    if endpoint == "banks.edit" and request.method == "POST":
        request.max_content_length = request.max_form_memory_size = EDIT_REQUEST_BYTES


@bp.before_request
@instructor_required
def guard():
    return None


def banks() -> Path:
    return Path(current_app.config["BANKS"])


@bp.get("/")
def index():
    filters = (request.args.get(k, "") for k in ("topic", "type", "state", "q"))
    found = bank_index(_board().refresh(), *filters)
    return render_template("instructor/banks.html", rows=found.rows, other=found.other, topics=found.topics,
                           types=found.types, files=editor.bank_files(banks()), f=found.filters, total=found.total,
                           checked=found.checked, seeds=_seeds(), states=STATES)


@bp.get("/progress")
def progress():
    """How far the background checks are (the bank list's progress bar asks every few seconds)."""
    b = _board().refresh()
    return jsonify(checked=len(b.checked), total=b.total, complete=b.complete)


def _board() -> bank_checks.Board:
    return bank_checks.board(banks(), _store(), _seeds())


def _store() -> Path:
    """Where each item's checks are kept (the editor's and the bank pages' alike)."""
    return Path(current_app.config["INSTANCE"]) / "bank-checks"


def _seeds() -> int:
    return current_app.config.get("BANK_CHECK_SEEDS", VALIDATION_SEEDS)


def _lookup(item_id: str):  # type: ignore[no-untyped-def]
    b = _board()
    if item_id not in b.catalog.items:
        raise ServiceError(404, f"no item {item_id!r} in the banks")
    return b, b.catalog.items[item_id]


SEED_MAX = 2**31 - 1


@bp.get("/items/<item_id>")
def item(item_id: str):
    """One variant of an item; ``?seed=N`` is the variant's address (a random seed redirects to its own)."""
    board, bank_item = _lookup(item_id)
    if request.args.get("random"):
        return redirect(url_for("banks.item", item_id=item_id, seed=random.SystemRandom().randrange(0, SEED_MAX + 1)))
    try:
        seed, bad_seed = int_arg("seed", 0, SEED_MAX) or 0, None
    except ServiceError as e:
        seed, bad_seed = None, e.message
    data, error = None, None
    if seed is not None:
        try:
            data = preview_data(make_variant(bank_item, seed))
        except VariantError as e:
            error = str(e)
    rel = str(Path(bank_item.path).resolve().relative_to(banks().resolve()))
    return render_template("instructor/item.html", item=bank_item, seed=seed, data=data, error=error,
                           bad_seed=bad_seed, typed=request.args.get("seed", ""), seed_max=SEED_MAX,
                           problems=board.item_problems(bank_item), rel=rel,
                           spec=json.dumps(data.get("spec"), indent=2) if data and data.get("spec") else None), \
        400 if bad_seed else 200


@bp.get("/items/<item_id>/stress")
def stress(item_id: str):
    _, bank_item = _lookup(item_id)
    report = in_thread(review.stress)(bank_item, VALIDATION_SEEDS)  # off the gevent worker's event loop
    chart = None
    if report.numeric:
        lo, hi = min(report.numeric), max(report.numeric)
        hi = hi if hi > lo else lo + 1
        chart = charts.histogram(report.numeric, bins=12, lo=lo, hi=hi + 1e-12 * abs(hi),
                                 title=f"Answers of {item_id} over {report.seeds} seeds", xlabel="answer",
                                 ylabel="seeds", unit="")
    return render_template("instructor/stress.html", item=bank_item, report=report, chart=chart)


def _edit_page(rel: str, text: str, problems: list | None = None, status: int = 200, **extra):  # type: ignore[no-untyped-def]
    """The editor with ``text``; ``problems`` (of every file) listed, those of this file beside their lines."""
    problems = problems or []
    lines: dict[int, list[str]] = {}
    for p in problems:
        if p.path == rel:
            lines.setdefault(p.mark.line, []).append(f"{p.severity}: {p.message}")
    return render_template("instructor/edit.html", rel=rel, text=text, problems=problems, lines=lines,
                           errors=sum(p.severity == "error" for p in problems), limit=editor.MAX_BANK_BYTES,
                           **extra), status


@bp.route("/edit/<path:rel>", methods=["GET", "POST"])
def edit(rel: str):
    root = banks()
    editor.resolve(root, rel)  # 400 before anything else for paths outside the folder
    if request.method in ("GET", "HEAD"):
        return _edit_page(rel, editor.read(root, rel))
    text = request.form.get("text", "")
    try:  # validation runs before the write lock is taken; the save itself is one short transaction
        version_id = editor.save(db(), root, rel, text, principal().id, _seeds(), _store()).id
    except editor.EditRefused as e:
        return _edit_page(rel, text, e.problems, 422, refused=True)
    except editor.FileTooLarge as e:  # the text stays in the editor, to be cut down
        return _edit_page(rel, text, [], 413, refused=True, too_large=e.message)
    flash(f"Saved {rel} (version {version_id}); the banks were reloaded.")
    return redirect(url_for("banks.edit", rel=rel))


@bp.errorhandler(413)
def too_large(e):  # type: ignore[no-untyped-def]
    """More than even the editor's form accepts: say so in the page style (the text never arrived)."""
    rel = (request.view_args or {}).get("rel")
    return render_template("instructor/too_large.html", rel=rel, limit=editor.MAX_BANK_BYTES,
                           request_limit=EDIT_REQUEST_BYTES if request.endpoint == "banks.edit" else None,
                           sent=request.content_length), 413


@bp.get("/history/<path:rel>")
def history(rel: str):
    key = editor.canonical(banks(), rel)  # one history per file, however its path is typed
    with reading() as s:
        versions = editor.history(s, key)
        show = int_arg("version")
        shown = editor.version(s, show) if show else None
        a, b = int_arg("a"), int_arg("b")
        diff = None
        if a and b:
            diff = editor.diff(editor.version(s, a), editor.version(s, b), rel)
        elif a:
            diff = editor.diff(editor.version(s, a), editor.read(banks(), rel), rel)
    if shown is not None and shown.path != key:
        raise ServiceError(404, f"version {show} is not a version of {rel}")
    return render_template("instructor/history.html", rel=rel, versions=versions, shown=shown, diff=diff)
