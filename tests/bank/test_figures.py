"""Figures drawn from a variant (issue 13 part 5): each SVG parses, shows this variant's numbers, is
safe to inline under the CSP, and has a text alternative made from the same numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank import figures
from quizengine.bank.catalog import load_catalog
from quizengine.bank.figures.svg import clean
from quizengine.bank.validate import validate_paths
from quizengine.bank.variant import make_variant

BANKS = Path(__file__).resolve().parents[2] / "banks"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def shown(x: float) -> str:
    """A number as the figures print it, written independently: 4 significant digits, a true minus."""
    s = f"{float(x):.4g}"
    return ("\u2212" + s[1:]) if s.startswith("-") else s


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def assert_safe(svg: str) -> None:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    for el in root.iter():
        assert el.tag.removeprefix(SVG) not in ("script", "style", "foreignObject", "metadata"), el.tag
        assert "style" not in el.attrib, (el.tag, el.attrib)
        assert not any(a.startswith("on") for a in el.attrib), el.attrib
        href = el.attrib.get("href")
        assert href is None or href.startswith("#")


def figure_of(catalog, item_id: str, seed: int, k: int = 0):
    v = make_variant(catalog.items[item_id], seed)
    return v, figures.build(v)[k]


def test_items_declare_enough_figures(catalog):
    kinds = [f.kind for item in catalog.items.values() for f in item.model.figures]
    with_figures = [i for i in catalog.items.values() if i.model.figures]
    networks = [i for i in with_figures if any(f.kind == "network" for f in i.model.figures)]
    assert len(with_figures) >= 15 and len(networks) >= 8
    assert {"network", "activation", "trajectory"} <= set(kinds)


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_network_diagram_shows_the_variants_weights_biases_and_inputs(catalog, seed):
    v, fig = figure_of(catalog, "bp-forward-221", seed)
    W1, b1, W2, x = (np.asarray(v.values[k]) for k in ("W1", "b1", "W2", "x"))
    labels = texts(fig.svg)
    assert_safe(fig.svg)
    # every weight on its edge, W_ij from input i to unit j (Keras kernel layout)
    for i in range(2):
        for j in range(2):
            line = f"edge from x{i + 1} to h{j + 1}, weight {shown(W1[i, j])}"
            assert line in fig.details
            assert line in fig.svg  # the edge's own <title>
            assert shown(W1[i, j]) in labels
        assert f"edge from h{i + 1} to \u0177, weight {shown(W2[i, 0])}" in fig.details
        assert f"input x{i + 1} = {shown(x[i])}" in fig.details and shown(x[i]) in labels
        assert f"b = {shown(b1[i])}" in labels and f"bias of h{i + 1}: {shown(b1[i])}" in fig.details
    assert f"b = {shown(v.values['b2'])}" in labels
    assert "2 inputs" in fig.alt and "sigmoid" in fig.alt
    assert len(fig.details) == 2 + 4 + 2 + 2 + 1  # inputs, W1, b1, W2, b2


def test_network_diagram_never_shows_what_the_question_asks(catalog):
    v, fig = figure_of(catalog, "bp-forward-221", 3)
    out = v.result["output"][0]
    assert shown(out) not in texts(fig.svg) and shown(out) not in " ".join(fig.details)


@pytest.mark.parametrize("item_id, name", [
    ("act-calc-tanh-derivative", "tanh"),
    ("act-calc-leaky-relu-value", "leaky_relu"),
])
def test_activation_plot_marks_the_variants_z(catalog, item_id, name):
    v, fig = figure_of(catalog, item_id, 5)
    z = v.values["z"]
    assert_safe(fig.svg)
    assert f"z = {shown(z)}" in texts(fig.svg)
    assert f"marked point at z = {shown(z)}" in fig.details
    assert fig.alt.startswith(f"Plot of {name}(z)") and f"z = {shown(z)}" in fig.alt
    if name == "leaky_relu":
        assert f"\u03b1 = {shown(v.values['alpha'])}" in fig.alt


def test_trajectory_shows_the_start_and_each_step_on_the_contours(catalog):
    v, fig = figure_of(catalog, "opt-quad-gd-3-steps", 11)
    p = v.values
    A = np.array([[p["a1"], 0.0], [0.0, p["a2"]]])
    b = np.array([p["b1"], p["b2"]])
    w = np.asarray(p["w0"], dtype=float)
    assert_safe(fig.svg)
    start = f"w0 = ({shown(w[0])}, {shown(w[1])})"
    assert start in texts(fig.svg) and start in fig.details
    for k in range(1, 4):  # plain gradient descent by hand: w <- w - lr (A w - b)
        w = w - p["lr"] * (A @ w - b)
        assert f"w{k} = ({shown(w[0])}, {shown(w[1])})" in fig.details
    star = np.linalg.solve(A, b)
    assert f"minimum w* = ({shown(star[0])}, {shown(star[1])})" in fig.details
    assert fig.when == "after_submission"  # the path is the key


def test_a_trajectory_of_no_steps_shows_the_start_only(catalog):
    v, fig = figure_of(catalog, "opt-quad-nesterov-2-steps", 2, k=0)
    assert fig.when == "always" and [d for d in fig.details if d.startswith("w")] == [
        f"w0 = ({shown(v.values['w0'][0])}, {shown(v.values['w0'][1])})"]


def test_figures_are_the_same_svg_every_time_and_ids_differ_between_figures(catalog):
    a = figure_of(catalog, "act-calc-tanh-derivative", 4)[1]
    other = figure_of(catalog, "act-calc-tanh-derivative", 5)[1]  # drawn on the same reused axes in between
    b = figure_of(catalog, "act-calc-tanh-derivative", 4)[1]
    assert a.svg == b.svg
    ids = lambda svg: {el.attrib["id"] for el in ET.fromstring(svg).iter() if "id" in el.attrib}  # noqa: E731
    assert ids(a.svg) and not ids(a.svg) & ids(other.svg)


def test_figures_are_cached_per_item_version_and_seed_in_a_bounded_lru(catalog, monkeypatch):
    monkeypatch.setattr(figures, "CACHE_SIZE", 3)
    monkeypatch.setattr(figures, "_CACHE", type(figures._CACHE)())
    item = catalog.items["bp-hidden-delta"]
    first = figures.figures_for(make_variant(item, 1))
    assert figures.figures_for(make_variant(item, 1)) is first  # a hit
    for seed in range(2, 6):
        figures.figures_for(make_variant(item, seed))
    assert len(figures._CACHE) == 3 and (item.id, item.version, 1, None) not in figures._CACHE
    assert figures.figures_for(make_variant(catalog.items["bp-forward-221"], 1)) is not first
    assert figures.figures_for(make_variant(catalog.items["act-calc-tanh-value"], 1)) == []  # no figures


@pytest.mark.parametrize("dirty, gone, kept", [
    ('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><g/></svg>', "alert", "<g>"),
    ('<svg xmlns="http://www.w3.org/2000/svg"><rect onload="x()" width="2"/></svg>', "onload", 'width="2"'),
    ('<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>hi</p></foreignObject></svg>', "hi", "<svg"),
    ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
     '<use xlink:href="https://evil.example/x.svg#a"/><use xlink:href="#m1"/></svg>', "evil", 'href="#m1"'),
    ('<svg xmlns="http://www.w3.org/2000/svg"><path style="fill: #ffffff; stroke: url(https://e.x/a)"/></svg>',
     "e.x", 'fill="#ffffff"'),
    ('<svg xmlns="http://www.w3.org/2000/svg"><defs><style>*{stroke: red}</style></defs>'
     '<text style="font: bold 10px \'DejaVu Sans\'; text-anchor: middle">z</text></svg>', "red",
     'font-weight="bold" font-size="10px"'),
])
def test_clean_keeps_drawing_and_drops_what_runs_or_styles(dirty, gone, kept):
    out = clean(dirty)
    assert gone not in out and kept in out
    assert_safe(out)


def write_bank(tmp_path: Path, figures_yaml: str, calc: str = "activation") -> Path:
    calcs = {
        "activation": "calc: {activation: {name: tanh}, z: [\"$z\"]}\n    answer: value[0]",
        "optimizer": ("calc:\n      optimizer: {name: sgd, learning_rate: 0.1}\n      params: [\"$z\", \"$z\"]\n"
                      "      objective: {quadratic: {A: [[2.0, 0.0], [0.0, 0.5]], b: [0.0, 0.0]}}\n      steps: 2\n"
                      "    answer: steps[1].params"),
    }
    (tmp_path / "b.yaml").write_text(
        "topic: t\ntitle: T\nitems:\n  - id: t-fig\n    type: numeric\n"
        "    prompt: z = {{z}}; give the answer to 4 significant figures.\n    tolerance: {sigfigs: 4}\n"
        "    explanation: e\n    params:\n      z: {range: [0.5, 2.0], step: 0.25}\n"
        f"    {calcs[calc]}\n    figures: {figures_yaml}\n")
    return tmp_path


@pytest.mark.parametrize("figures_yaml, calc, message", [
    ("[{kind: network}]", "activation", "figure 1: a network diagram takes its numbers from a 'calc' with a 'network'"),
    ("[{kind: activation, z: \"$nope\"}]", "activation", "refers to an undefined parameter"),
    ("[{kind: activation, name: softmax}]", "activation", "Input should be"),  # not a curve: the schema refuses
    ("[{kind: trajectory}]", "optimizer", "shows the key (steps[1].params)"),
    ("[{kind: trajectory}]", "activation", "a trajectory needs a 'calc' optimizer task"),
    ("[{kind: netwrok}]", "activation", "unknown figure kind 'netwrok'; did you mean 'network'?"),
    ("[{caption: hi}]", "activation", "missing key 'kind'"),
])
def test_validate_points_at_a_figure_that_cannot_be_built(tmp_path, figures_yaml, calc, message):
    folder = write_bank(tmp_path, figures_yaml, calc)
    line = next(n for n, text in enumerate((folder / "b.yaml").read_text().splitlines(), 1) if "figures:" in text)
    errors = [str(p) for p in validate_paths([folder]).errors]
    assert len(errors) == 1 and message in errors[0], errors
    assert errors[0].split(":")[1] == str(line), errors  # at the figures line


def test_validate_accepts_a_trajectory_that_waits_for_submission(tmp_path):
    cat = validate_paths([write_bank(tmp_path, "[{kind: trajectory, when: after_submission}, "
                                               "{kind: trajectory, steps: 1}]", "optimizer")])
    assert not cat.errors, [str(p) for p in cat.errors]


# ---------------------------------------------------------------- the reused canvas (plots drawn fast)

def test_a_reused_plot_shows_only_this_drawings_points_and_ticks():
    from quizengine.bank.figures.plots import ActivationDrawing, activation_svg

    three = texts(clean(activation_svg(ActivationDrawing("tanh", 0.0, (-1.5, 0.25, 2.0), -5.0, 5.0), "a")))
    one = texts(clean(activation_svg(ActivationDrawing("relu", 0.0, (3.0,), -4.0, 6.0), "b")))
    assert [t for t in three if t.startswith("z = ")] == ["z = \u22121.5", "z = 0.25", "z = 2"]
    assert [t for t in one if t.startswith("z = ")] == ["z = 3"]  # the earlier drawing's notes are hidden
    # ticks at round steps over each drawing's own range, labelled as matplotlib labels them (same decimals),
    # then the axis label and the title: nothing else, nothing left over from the drawing before
    m = "\u2212"
    assert sorted(t for t in three if not t.startswith("z = ")) == sorted(
        [f"{m}4", f"{m}2", "0", "2", "4"] + [f"{m}1.0", f"{m}0.5", "0.0", "0.5", "1.0"] + ["z", "tanh(z)"])
    assert sorted(t for t in one if not t.startswith("z = ")) == sorted(
        [f"{m}4", f"{m}2", "0", "2", "4", "6"] + ["0", "2", "4", "6"] + ["z", "relu(z)"])


def test_contours_are_the_lines_matplotlib_contour_draws():
    from matplotlib.figure import Figure

    from quizengine.bank.figures.canvas import contour_paths

    g1, g2 = np.meshgrid(np.linspace(-1.0, 2.0, 40), np.linspace(-0.5, 2.5, 40))
    f = 0.5 * (3.0 * g1 ** 2 + 0.4 * g2 ** 2) - (1.0 * g1 - 0.3 * g2)
    ours = contour_paths(g1, g2, f, 12)
    theirs = [p for p in Figure().add_subplot().contour(g1, g2, f, levels=12).get_paths() if len(p.vertices)]
    assert len(ours) == len(theirs) > 5
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.codes, b.codes)
