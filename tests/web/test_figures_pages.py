"""Figures where they appear: preview --json, the instructor's item preview and stress test, and a
student's attempt and results pages (with the student's own numbers)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from quizengine.cli import main
from quizengine.models import Quiz
from quizengine.services import views
from quizengine.services.attempts import load_attempt

from .conftest import BANKS, ROOT, set_quiz

QUIZ = "module-04-prep"


def shown(x: float) -> str:
    s = f"{float(x):.4g}"
    return ("\u2212" + s[1:]) if s.startswith("-") else s


def test_preview_json_has_each_figures_svg_and_text(runner):
    r = runner.invoke(main, ["preview", "bp-hidden-delta", "--seed", "4", "--json", "--banks", str(BANKS)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    (fig,) = data["figures"]
    assert fig["kind"] == "network" and fig["when"] == "always"
    assert ET.fromstring(fig["svg"]).tag == "{http://www.w3.org/2000/svg}svg"
    W1 = data["params"]["W1"]
    assert f"edge from x2 to h1, weight {shown(W1[1][0])}" in fig["details"]
    assert f">{shown(W1[1][0])}<" in fig["svg"] and fig["alt"].startswith("Network diagram")
    text = runner.invoke(main, ["preview", "bp-hidden-delta", "--seed", "4", "--banks", str(BANKS)]).output
    assert "figure 1 (network): Network diagram" in text and f"weight {shown(W1[1][0])}" in text


def test_preview_json_of_an_item_without_figures_has_an_empty_list(runner):
    r = runner.invoke(main, ["preview", "act-calc-tanh-value", "--json", "--banks", str(BANKS)])
    assert json.loads(r.output)["figures"] == []


def test_instructor_item_page_and_stress_test_show_the_figure(client, users):
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    page = client.get("/instructor/banks/items/act-calc-tanh-derivative?seed=9").get_data(as_text=True)
    pre = json.loads(CliRunnerJSON.preview("act-calc-tanh-derivative", 9))
    z = pre["params"]["z"]
    assert 'class="figure"' in page and "<svg" in page and f"z = {shown(z)}" in page
    assert 'class="sr-only" id="fig-act-calc-tanh-derivative-9-1-text"' in page
    assert f"<li>marked point at z = {shown(z)}</li>" in page
    page = client.get("/instructor/banks/items/opt-quad-gd-3-steps").get_data(as_text=True)
    assert "students see this figure after submission" in page
    stress = client.get("/instructor/banks/items/bp-forward-221/stress").get_data(as_text=True)
    assert "Figures of seed 0" in stress and "edge from x1 to h1" in stress


class CliRunnerJSON:
    @staticmethod
    def preview(item_id: str, seed: int) -> str:
        from click.testing import CliRunner

        return CliRunner().invoke(main, ["preview", item_id, "--seed", str(seed), "--json", "--banks",
                                         str(BANKS)]).output


def one_item_quiz(db, *items: str) -> None:
    with db.read() as s:
        definition = dict(s.get(Quiz, QUIZ).definition)
    set_quiz(db, definition={**definition, "slots": [{"items": [i], "count": 1} for i in items]})


def test_student_sees_the_figure_of_their_own_variant_and_the_path_only_in_the_results(client, users, app, db):
    one_item_quiz(db, "bp-forward-221", "opt-quad-gd-3-steps")
    users.add("ann")
    users.add("teacher", "instructor")
    users.login(client, "ann")
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    with db.read() as s:
        from quizengine.models import User

        teacher = s.query(User).filter_by(username="teacher").one()
        key = views.key_view(load_attempt(s, teacher, aid))
    seeds = {q["item_id"]: q["seed"] for q in key["questions"]}
    own = json.loads(CliRunnerJSON.preview("bp-forward-221", seeds["bp-forward-221"]))
    for line in own["figures"][0]["details"]:
        assert f"<li>{line}</li>" in page  # this student's weights, biases and inputs
    assert page.count('class="figure"') == 1  # the optimizer's path gives its key away: not before submitting
    assert "Contour plot" not in page
    client.post(f"/attempts/{aid}/submit")
    result = client.get(f"/attempts/{aid}/result").get_data(as_text=True)
    assert result.count('class="figure"') == 2 and "Contour plot" in result
    path = json.loads(CliRunnerJSON.preview("opt-quad-gd-3-steps", seeds["opt-quad-gd-3-steps"]))
    assert all(f"<li>{line}</li>" in result for line in path["figures"][0]["details"])


def test_api_attempt_view_carries_figures_for_items_that_draw_them(app, db, users):
    one_item_quiz(db, "bp-forward-221", "act-calc-tanh-value")
    users.add("ann")
    client = app.test_client()
    h = users.token(client, "ann")
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    got = client.get(f"/api/v1/attempts/{r.json['attempt_id']}", headers=h).json
    by_id = {q["id"]: q for q in got["questions"]}
    with_fig = [q for q in by_id.values() if q.get("figures")]
    assert len(with_fig) == 1 and with_fig[0]["figures"][0]["kind"] == "network"


SCRIPT = """
import sys, json
sys.path.insert(0, {root!r})
from tests.web.conftest import base_config
from quizengine import create_app
from quizengine.migrate import upgrade
from quizengine.services import accounts
from quizengine.services.banks import load_banks
from quizengine.models import Quiz
from pathlib import Path
tmp = Path({tmp!r}); url = f"sqlite:///{{tmp / 'db.sqlite3'}}"
upgrade(url)
app = create_app(base_config(tmp, url))
db = app.extensions["quizengine.db"]
with db.write() as s:
    load_banks(s, Path({banks!r}))
    accounts.add_user(s, "ann", "student", "password-123", method="argon2id:m=8,t=1,p=1")
    q = s.get(Quiz, "module-04-prep")
    q.definition = {{**q.definition, "slots": [{{"items": ["act-calc-tanh-value", "vocab-epoch-definition"]}}]}}
assert "matplotlib" not in sys.modules
c = app.test_client()
c.post("/login", data={{"username": "ann", "password": "password-123"}})
aid = c.post("/quizzes/module-04-prep/start").headers["Location"].rsplit("/", 1)[1]
page = c.get(f"/attempts/{{aid}}")
assert page.status_code == 200 and 'class="card question"' in page.get_data(as_text=True)
drawn = 'class="figure"' in page.get_data(as_text=True)
print(json.dumps({{"matplotlib": "matplotlib" in sys.modules, "figures": drawn}}))
"""


def test_matplotlib_is_not_imported_to_render_an_attempt_page_without_figures(tmp_path):
    code = SCRIPT.format(root=str(ROOT), tmp=str(tmp_path), banks=str(BANKS))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"matplotlib": False, "figures": False}
