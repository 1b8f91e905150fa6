"""The fast lane checks an answer against the question's save view (services/savecheck.py), kept for
every question the process has built, not against the variant (an LRU smaller than a class): a save
builds no variant once the view is known, nor when the question's rendering is stored (the view is
read from it), and refuses and notes what it did before."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from quizengine.models import AttemptQuestion, ItemVersion
from quizengine.models_rendering import Rendering
from quizengine.services import banks, savecheck
from tests.web.test_quicksave import QUIZ, ann, flask_calls, stored  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _no_views_yet():
    """Every test starts with no save view kept: the views are process-wide and bounded (a full store
    is emptied), so a worker that ran other tests first could otherwise empty it in the middle of a
    test."""
    savecheck.forget()
    yield


@pytest.fixture
def builds(monkeypatch):
    """The variants built from here on (every build goes through services.banks.make_variant)."""
    made = []
    real = banks.make_variant

    def counting(item, seed):
        made.append((item.id, seed))
        return real(item, seed)

    monkeypatch.setattr(banks, "make_variant", counting)
    return made


def _drop_variants():
    with banks._LOCK:
        banks._VARIANTS.clear()


def test_a_save_builds_no_variant_once_its_view_is_known(client, ann, db, flask_calls, builds):  # noqa: F811
    h, aid, qid, url = ann
    _drop_variants()  # a class's rotation drops them from the LRU
    # The view is known after this save: the start built the variant, or (its rendering found in the
    # process's cache, as after `quizengine warm`) this save builds it.
    assert client.put(url, headers=h, json={"response": "1.5", "seq": 1}).status_code == 200
    builds.clear()
    _drop_variants()
    r = client.put(url, headers=h, json={"response": "1,5", "seq": 2})
    assert r.status_code == 200 and r.json["format_error"]  # the note still comes from the question's checks
    assert builds == [] and flask_calls.calls == 0
    assert tuple(stored(db, aid, qid)) == ("1,5", 2)


def _question_key(db, aid: int, qid: str) -> tuple:
    """(item id, item version, seed, item version id) of an attempt's question."""
    with db.read() as s:
        return tuple(s.execute(select(ItemVersion.item_id, ItemVersion.version, AttemptQuestion.seed, ItemVersion.id)
                               .join(ItemVersion, ItemVersion.id == AttemptQuestion.item_version_id)
                               .where(AttemptQuestion.attempt_id == aid, AttemptQuestion.slot == int(qid[1:]) - 1)).one())


@pytest.mark.parametrize("kind", ["numeric scalar", "numeric vector", "single_choice"])
def test_a_save_whose_view_is_unknown_reads_it_from_the_rendering(client, users, db, flask_calls, builds,  # noqa: F811
                                                                  kind):
    """Another worker started the attempt (or `quizengine warm` rendered it): this process has neither
    the view nor the variant. The view comes from the question's stored rendering; nothing is built."""
    users.add("ann")
    h = users.token(client, "ann")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    want = {"numeric scalar": lambda q: q["type"] == "numeric" and not q["shape"],
            "numeric vector": lambda q: q["type"] == "numeric" and len(q["shape"]) == 1,
            "single_choice": lambda q: q["type"] == "single_choice"}[kind]
    q = next(q for q in a["questions"] if want(q))
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}"
    item_id, version, seed, _ = _question_key(db, a["attempt_id"], q["id"])
    savecheck.forget()
    _drop_variants()
    builds.clear()
    flask_calls.calls = 0  # (the login and the start went through Flask)
    good = q["choices"][-1]["id"] if q["type"] == "single_choice" else ["1.5"] * q["shape"][0] if q["shape"] else "1.5"
    bad = "c99" if q["type"] == "single_choice" else ["1"] * (q["shape"][0] + 1) if q["shape"] else ["1", "2"]
    assert client.put(url, headers=h, json={"response": good, "seq": 1}).status_code == 200
    assert (flask_calls.calls, builds) == (0, [])
    assert savecheck.save_view(item_id, version, seed) is not None  # kept: the next save reads nothing
    # the view refuses what the variant refuses; the full path then gives the error
    assert client.put(url, headers=h, json={"response": bad, "seq": 2}).status_code == 400 and flask_calls.calls == 1
    assert tuple(stored(db, a["attempt_id"], q["id"])) == (good, 1)


def test_without_a_rendering_a_save_whose_view_is_unknown_builds_it_once(client, ann, db, flask_calls,  # noqa: F811
                                                                         builds):
    h, aid, qid, url = ann
    _, _, seed, iv_id = _question_key(db, aid, qid)
    with db.write() as s:
        s.execute(delete(Rendering).where(Rendering.item_version_id == iv_id, Rendering.seed == seed))
    savecheck.forget()
    _drop_variants()
    builds.clear()
    assert client.put(url, headers=h, json={"response": "1.5", "seq": 1}).status_code == 200
    assert len(builds) == 1
    _drop_variants()
    assert client.put(url, headers=h, json={"response": "2.5", "seq": 2}).status_code == 200
    assert len(builds) == 1 and flask_calls.calls == 0
    assert tuple(stored(db, aid, qid)) == ("2.5", 2)


@pytest.mark.parametrize("body, status, fragment", [
    ({"response": [1, 2], "seq": 1}, 400, "one number, not a list"),
    ({"response": True, "seq": 1}, 400, "must be"),
    ({"response": "9" * 5000, "seq": 1}, 400, "not saved"),
    ({"response": "x" * 70000, "seq": 1}, 413, ""),
])
def test_a_refused_answer_is_refused_from_the_view_as_before(client, ann, db, flask_calls, builds,  # noqa: F811
                                                             body, status, fragment):
    h, aid, qid, url = ann
    _drop_variants()
    r = client.put(url, headers=h, json=body)
    assert r.status_code == status and fragment in r.get_data(as_text=True)
    assert flask_calls.calls == 1 and stored(db, aid, qid) is None  # Flask gave the error; nothing written
