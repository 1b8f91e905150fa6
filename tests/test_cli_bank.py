"""``quizengine validate``, ``items`` and ``preview`` through click's runner, and the shipped banks."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from quizengine.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "sample"
BANKS = ROOT / "banks"
SHIPPED_ITEMS_AT_LEAST = 40 + 25 + 20 + 30  # the content targets below: an empty folder must not pass


def test_validate_exit_codes(runner, tmp_path):
    assert runner.invoke(main, ["validate", str(SAMPLE)]).exit_code == 0
    bad = tmp_path / "b.yaml"
    bad.write_text("topic: b\ntitle: B\nitems:\n  - id: x\n    type: nope\n    prompt: p\n")
    r = runner.invoke(main, ["validate", str(bad)])
    assert r.exit_code == 1
    assert r.stdout.startswith(f"{bad}:5:11: error: x: unknown item type 'nope'")
    assert "Traceback" not in r.output
    r = runner.invoke(main, ["validate", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "no such file or folder" in r.stderr


def test_validate_defaults_to_the_configured_banks_folder(runner, monkeypatch):
    monkeypatch.setenv("QUIZENGINE_BANKS", str(SAMPLE))
    r = runner.invoke(main, ["validate"])
    assert r.exit_code == 0 and "12 items" in r.stderr


def test_shipped_banks_validate_cleanly(runner):
    r = runner.invoke(main, ["validate", str(BANKS)])
    assert r.exit_code == 0, r.stdout
    assert " error: " not in r.stdout
    # ...and not because there was nothing to check: the content targets add up to SHIPPED_ITEMS_AT_LEAST.
    counted = re.search(r"(\d+) banks, (\d+) items, (\d+) quizzes: 0 errors", r.stderr)
    assert counted, r.stderr
    banks, items, quizzes = map(int, counted.groups())
    assert banks >= 4 and items >= SHIPPED_ITEMS_AT_LEAST and quizzes >= 1


def test_shipped_banks_meet_the_content_targets():
    from quizengine.bank.catalog import load_catalog

    cat = load_catalog([BANKS])
    by_topic: dict[str, list] = {}
    for item in cat.items.values():
        by_topic.setdefault(item.topic, []).append(item.model)
    minimum = {"vocabulary": 40, "activation-functions": 25, "momentum-optimizers": 20, "backpropagation": 30}
    for topic, n in minimum.items():
        items = by_topic[topic]
        assert len(items) >= n, topic
        if topic != "vocabulary":
            calculated = [m for m in items if getattr(m, "calc", None) is not None and getattr(m, "params", None)]
            assert len(calculated) * 2 >= len(items), topic
        assert all(m.explanation for m in items), topic
    assert "module-04-prep" in cat.quizzes
    quiz = cat.quizzes["module-04-prep"].model
    assert sum(s.count for s in quiz.slots) == 20 and quiz.max_attempts == 2 and quiz.score_policy == "best"
    assert quiz.opens_at is None and quiz.closes_at is None


def test_mutated_bank_is_reported_at_the_right_line(runner, tmp_path):
    banks = tmp_path / "banks"
    shutil.copytree(BANKS, banks)
    path = banks / "vocabulary.yaml"
    lines = path.read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.lstrip().startswith("prompt:"))
    lines[n] = lines[n].replace("prompt:", "promt:", 1)
    path.write_text("".join(lines))
    # a key's spelling does not depend on the seed: 2 seeds, where the default 200 would redo the
    # whole-bank check of test_shipped_banks_validate_cleanly
    r = runner.invoke(main, ["validate", str(banks), "--seeds", "2"])
    assert r.exit_code == 1
    assert f"{path}:{n + 1}:" in r.stdout and "unknown key 'promt'; did you mean 'prompt'?" in r.stdout


def test_items_json_has_the_contract_fields(runner):
    r = runner.invoke(main, ["items", "--json", "--banks", str(SAMPLE)])
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert len(rows) == 12
    for row in rows:
        assert {"id", "topic", "type", "parametrized", "calculated"} <= set(row)
    by_id = {row["id"]: row for row in rows}
    assert by_id["s-num-delta"]["parametrized"] and by_id["s-num-delta"]["calculated"]
    assert not by_id["s-num-static"]["calculated"] and not by_id["s-single"]["parametrized"]


def test_items_topic_filter_and_unknown_topic(runner):
    r = runner.invoke(main, ["items", "--topic", "sample", "--banks", str(SAMPLE)])
    assert r.exit_code == 0 and "s-keras" in r.stdout
    r = runner.invoke(main, ["items", "--topic", "nope", "--banks", str(SAMPLE)])
    assert r.exit_code == 2 and "no topic 'nope'" in r.stderr


def test_preview_json_contract_fields_and_determinism(runner):
    args = ["preview", "s-num-delta", "--seed", "17", "--json", "--banks", str(SAMPLE)]
    a = json.loads(runner.invoke(main, args).stdout)
    b = json.loads(runner.invoke(main, args).stdout)
    assert a == b
    assert {"id", "type", "topic", "seed", "prompt", "prompt_html", "answer", "explanation"} <= set(a)
    assert a["seed"] == 17 and math.isfinite(a["answer"])
    assert "<math" in a["prompt_html"]
    other = json.loads(runner.invoke(main, ["preview", "s-num-delta", "--seed", "18", "--json", "--banks",
                                            str(SAMPLE)]).stdout)
    assert other["prompt"] != a["prompt"] or other["answer"] != a["answer"]


def test_preview_default_seed_is_zero_and_text_output(runner):
    r = runner.invoke(main, ["preview", "s-momentum", "--banks", str(SAMPLE)])
    assert r.exit_code == 0 and "seed 0" in r.stdout and "answer:" in r.stdout and "Worked solution" in r.stdout


def test_preview_unknown_item_suggests(runner):
    r = runner.invoke(main, ["preview", "s-singel", "--banks", str(SAMPLE)])
    assert r.exit_code == 2 and "did you mean 's-single'" in r.stderr


@pytest.mark.slow
def test_every_shipped_item_previews_deterministically_with_finite_answers():
    from quizengine.bank.catalog import load_catalog
    from quizengine.bank.params import plain
    from quizengine.bank.variant import make_variant
    import numpy as np

    cat = load_catalog([BANKS])
    assert len(cat.items) >= SHIPPED_ITEMS_AT_LEAST and not cat.errors  # an empty or broken folder would pass the loop below
    for item in cat.items.values():
        for seed in (0, 1, 99, 12345):
            v1, v2 = make_variant(item, seed), make_variant(item, seed)
            assert plain(v1.answer) == plain(v2.answer) and v1.prompt == v2.prompt
            if v1.type == "numeric":
                assert np.all(np.isfinite(np.asarray(v1.answer, dtype=float))), item.id
