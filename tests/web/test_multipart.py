"""A multi-part chain through the JSON API (issue 13): parts in the attempt, per-part saves with
the question's seq, refused parts, and ECF credit with per-part results after submission."""

from __future__ import annotations

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.ecf import with_given
from quizengine.bank.params import plain
from quizengine.bank.variant import make_variant, resolve
from quizengine.calc.engine import run_task

from .conftest import BANKS

QUIZ = "module-04-prep"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def start_chain(client, users):
    users.add("ann")
    users.add("teacher", "instructor")
    h = users.token(client, "ann")
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    assert r.status_code == 201
    a = r.json
    (q,) = [q for q in a["questions"] if q["type"] == "multipart"]
    key = {k["id"]: k for k in client.get(f"/api/v1/attempts/{a['attempt_id']}/key",
                                          headers=users.token(client, "teacher")).json["questions"]}
    return h, a, q, key[q["id"]]


def slipped_chain(catalog, key) -> dict:
    """The chain recomputed from a first part 20% off (plus 0.05): every later part right for it."""
    v = make_variant(catalog.items[key["item_id"]], key["seed"])
    first = v.payload.parts[0]
    wrong = np.asarray(first.answer, dtype=np.float64) * 1.2 + 0.05
    result = run_task(with_given(v.task, {first.part.answer: wrong}))
    out = {first.part.id: plain(wrong)}
    for k in v.payload.parts[1:]:
        out[k.part.id] = plain(resolve(result, k.part.answer))
    return out


def test_the_attempt_shows_the_parts_without_their_answers(client, users):
    _, _, q, key = start_chain(client, users)
    assert key["item_id"].startswith("chain-") and isinstance(key["answer"], dict)
    assert sorted(p["id"] for p in q["parts"]) == sorted(key["answer"])  # (the JSON object is sorted)
    for p in q["parts"]:
        assert set(p) == {"id", "number", "prompt_html", "points", "shape", "precision"}
        assert p["precision"].startswith("to ")
    assert "answer" not in str(q["parts"])


def test_each_part_saves_on_its_own_with_the_questions_seq(client, users):
    h, a, q, key = start_chain(client, users)
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}"
    p1, p2 = (p["id"] for p in q["parts"][:2])
    answer = key["answer"]
    assert client.put(url, headers=h, json={"response": {p1: answer[p1]}, "seq": 1}).status_code == 200
    assert client.put(url, headers=h, json={"response": {p1: answer[p1], p2: answer[p2]}, "seq": 2}).status_code == 200
    # a stale tab that still has seq 1 cannot overwrite the newer object, even for another part
    stale = client.put(url, headers=h, json={"response": {p1: answer[p1]}, "seq": 2})
    assert stale.status_code == 409
    got = client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).json
    (saved,) = [x for x in got["questions"] if x["id"] == q["id"]]
    assert saved["response"] == {p1: answer[p1], p2: answer[p2]} and saved["seq"] == 2


@pytest.mark.parametrize("response,message", [
    ({"nope": 1}, "'nope' is not a part of this question"),
    ([1, 2], "a multipart response must be an object"),
])
def test_a_response_that_does_not_fit_the_parts_is_refused(client, users, response, message):
    h, a, q, _ = start_chain(client, users)
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}", headers=h, json={"response": response})
    assert r.status_code == 400 and message in r.json["error"]


def test_a_part_of_the_wrong_shape_is_refused_naming_the_part(client, users):
    h, a, q, _ = start_chain(client, users)
    vector = next(p for p in q["parts"] if len(p["shape"]) == 1)
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}", headers=h,
                   json={"response": {vector["id"]: 0.5}})
    assert r.status_code == 400 and f"part {vector['number']} ({vector['id']})" in r.json["error"]


def test_a_slip_in_the_first_part_earns_ecf_on_the_rest(client, users, catalog):
    h, a, q, key = start_chain(client, users)
    response = slipped_chain(catalog, key)
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}"
    assert client.put(url, headers=h, json={"response": response}).status_code == 200
    r = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h)
    assert r.status_code == 200
    (res,) = [x for x in r.json["questions"] if x["id"] == q["id"]]
    rows = res["part_results"]
    first = q["parts"][0]
    assert rows[0]["score"] < rows[0]["max_score"] and not rows[0]["ecf"]
    later = [p for p in rows[1:] if p["score"] == p["max_score"]]
    assert any(p["ecf"] for p in later), rows
    total = sum(p["score"] for p in rows)
    assert res["score"] == pytest.approx(total) and res["max_score"] == pytest.approx(sum(p["max_score"] for p in rows))
    assert f"from part {first['number']}" in res["feedback"] or "from part 2" in res["feedback"]
    assert "Your chain" in res["ecf_chain_html"]


def test_the_attempt_page_shows_each_parts_saved_answer(client, users):
    h, a, q, key = start_chain(client, users)
    answer = {p: [str(x) for x in v] if isinstance(v, list) and not isinstance(v[0], list) else v
              for p, v in key["answer"].items()}
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}"
    assert client.put(url, headers=h, json={"response": answer}).status_code == 200
    users.login(client, "ann")
    page = client.get(f"/attempts/{a['attempt_id']}").get_data(as_text=True)
    last = q["parts"][-1]
    value = key["answer"][last["id"]]
    first = value if not isinstance(value, list) else (value[0] if not isinstance(value[0], list) else value[0][0])
    field = f'name="q-{q["id"]}-{last["id"]}' + ("" if not last["shape"] else "-0" * len(last["shape"])) + '"'
    assert field in page
    tail = page.split(field, 1)[1][:400]
    assert f'value="{first}"' in tail, tail


def test_the_instructor_preview_lists_the_parts(client, users):
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    page = client.get("/instructor/banks/items/chain-opt-momentum?seed=2").get_data(as_text=True)
    assert "steps[1].params" in page and "marked to 4 significant figures" in page and "from v1, w1, v2" in page
