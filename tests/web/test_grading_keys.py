"""Grading keys kept ahead (services/renderings.KEY_FORMAT): a submit grades a numeric question from
its key instead of building the variant, with the same scores, feedback and key as the variant
gives; without a kept key (or with a broken one) it builds the variant as before."""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete, select, update

from quizengine.bank.variant import make_variant
from quizengine.models import Attempt
from quizengine.models_rendering import Rendering
from quizengine.services import banks, renderings, warming
from quizengine.services.grades import grade_question
from quizengine.bank.params import plain
from tests.web.test_rendering_cache import QUIZ, forget_process_caches, start


def count_builds(monkeypatch) -> list[str]:
    """The item ids of the variants this process builds from now on."""
    built: list[str] = []

    def counted(item, seed):
        built.append(item.id)
        return make_variant(item, seed)

    monkeypatch.setattr(banks, "make_variant", counted)
    return built


def answer_all(client, head, db, view) -> dict[str, object]:
    """Answer every question: numeric ones right, slightly off, by a kept mistake or unreadably by
    turns; those with choices with their first option; the rest left unanswered. The responses by
    question id."""
    sent: dict[str, object] = {}
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        variants = [make_variant(banks.bank_item(aq.item_version), aq.seed) for aq in a.questions]
    for k, (q, v) in enumerate(zip(view["questions"], variants)):
        if v.kind.name == "numeric":
            answer = np.asarray(v.answer, dtype=np.float64)
            mistakes = list(v.payload.mistakes.values())
            value = [plain(v.answer), (answer * 1.01).tolist(),
                     plain(mistakes[0]) if mistakes else (answer + 7).tolist(), "abc"][k % 4]
            if value == "abc" and answer.ndim:
                value = ["abc"] * answer.shape[0] if answer.ndim == 1 else [["abc"] * answer.shape[1]] * answer.shape[0]
        elif q.get("choices"):
            value = q["choices"][0]["id"] if q["type"] in ("single_choice", "true_false") else [q["choices"][0]["id"]]
        else:
            continue  # left unanswered: graded as such
        r = client.put(f"/api/v1/attempts/{view['attempt_id']}/responses/{q['id']}", headers=head,
                       json={"response": value})
        assert r.status_code == 200, r.json
        sent[q["id"]] = value
    return sent


def test_a_submit_grades_numeric_questions_from_their_kept_keys(app, client, db, users, monkeypatch):
    users.add("ann")
    head = users.token(client, "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    view = start(client, head)
    numeric = [q["id"] for q in view["questions"] if q["type"] == "numeric"]
    with db.read() as s:
        kept = s.scalar(select(Rendering.view).where(Rendering.format == renderings.KEY_FORMAT).limit(1))
        n_keys = len(list(s.scalars(select(Rendering.seed).where(Rendering.format == renderings.KEY_FORMAT))))
    assert len(numeric) >= 5 and n_keys == len(numeric) and set(kept["key"]) == {"answer", "shape", "mistakes"}
    sent = answer_all(client, head, db, view)
    forget_process_caches()
    built = count_builds(monkeypatch)
    r = client.post(f"/api/v1/attempts/{view['attempt_id']}/submit", headers=head)
    assert r.status_code == 200, r.json
    # every question but the numeric ones was built, each once (grading, then the results, from the cache)
    assert len(built) == len(view["questions"]) - len(numeric) == len(set(built))
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        stored = [(aq.score, aq.result) for aq in a.questions]
        fresh = [grade_question(make_variant(banks.bank_item(aq.item_version), aq.seed), aq.points,
                                sent.get(q["id"])) for aq, q in zip(a.questions, view["questions"])]
        keys = [plain(make_variant(banks.bank_item(aq.item_version), aq.seed).answer) for aq in a.questions]
    assert stored == fresh  # the same scores and feedback as the built variants give
    assert any((res or {}).get("correct") for _, res in stored)  # a right answer recognised from a kept key
    assert any((res or {}).get("mistake") for _, res in stored)  # a mistake recognised from a kept key
    assert [q["correct_answer"] for q in r.json["questions"]] == keys
    assert all(q["explanation_html"] for q in r.json["questions"])  # rendered ahead, as shown with a build


def test_without_kept_keys_or_with_a_broken_one_the_variant_is_built(app, client, db, users, monkeypatch):
    for name in ("ann", "bob"):
        users.add(name)
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann", "bob"])
    results = {}
    for name, how in (("ann", "none kept"), ("bob", "broken")):
        head = users.token(client, name)
        view = start(client, head)
        with db.write() as s:
            keys = [(aq.item_version_id, aq.seed) for aq in s.get(Attempt, view["attempt_id"]).questions]
            mine = Rendering.format == renderings.KEY_FORMAT
            if how == "none kept":
                s.execute(delete(Rendering).where(mine, Rendering.seed.in_([seed for _, seed in keys])))
            else:
                s.execute(update(Rendering).where(mine, Rendering.seed.in_([seed for _, seed in keys]))
                          .values(view={"key": {"answer": 1.0}}))
        sent = answer_all(client, head, db, view)
        forget_process_caches()
        built = count_builds(monkeypatch)
        r = client.post(f"/api/v1/attempts/{view['attempt_id']}/submit", headers=head)
        assert r.status_code == 200, r.json
        assert len(built) == len(view["questions"]), how  # every variant built, once
        with db.read() as s:
            a = s.get(Attempt, view["attempt_id"])
            assert [(aq.score, aq.result) for aq in a.questions] == [
                grade_question(make_variant(banks.bank_item(aq.item_version), aq.seed), aq.points, sent.get(q["id"]))
                for aq, q in zip(a.questions, view["questions"])], how
        results[name] = r.json
    assert all(q["correct_answer"] is not None for q in results["bob"]["questions"])
