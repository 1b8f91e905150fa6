"""Error carried forward (issue 13): a table of cases whose expected numbers were worked out by hand
from the formulas (sigma(z) = 1/(1+e^-z), z = a W + b, L = 1/2 (y - y_hat)^2, delta = dL/dz, the
Keras momentum rule), never read from the calculator; and the gaming cases that earn nothing."""

from __future__ import annotations

import textwrap

import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.ecf import depends
from quizengine.bank.ecf_names import quantity_name
from quizengine.bank.variant import make_variant
from quizengine.grading import grade

# x = [1, 2], W1 = [[0.1, 0.2], [0.3, 0.4]], b1 = 0, sigmoid; W2 = [[0.5], [-0.5]], b2 = 0, sigmoid; y = 1.
# True chain: z1 = [0.7, 1.0], a1 = [0.668188, 0.731059], z2 = -0.0314354, y_hat = 0.492142,
# L = 0.128960, delta2 = (y_hat - 1) y_hat (1 - y_hat) = -0.126933.
NETWORK = """
  - id: t-net
    type: multipart
    prompt: A fixed 2-2-1 sigmoid network.
    ecf_credit: {credit}
    calc:
      network:
        layers:
          - {{weights: [[0.1, 0.2], [0.3, 0.4]], bias: [0.0, 0.0], activation: sigmoid}}
          - {{weights: [[0.5], [-0.5]], bias: [0.0], activation: sigmoid}}
        loss: half_sse
      input: [1.0, 2.0]
      target: [1.0]
    parts:
      - {{id: z1, prompt: z1, answer: "layers[0].z", tolerance: {{sigfigs: 4}}}}
      - {{id: a1, prompt: a1, answer: "layers[0].a", tolerance: {{sigfigs: 4}}}}
      - {{id: yhat, prompt: yhat, answer: "output[0]", tolerance: {{sigfigs: 4}}}}
      - {{id: loss, prompt: L, answer: loss, tolerance: {{sigfigs: 3}}}}
      - {{id: d2, prompt: d2, answer: "layers[1].delta[0]", tolerance: {{sigfigs: 3}}}}
      - {{id: dw2, prompt: dW2, answer: "layers[1].dW", tolerance: {{sigfigs: 3}}}}
"""
# w0 = 1, lr = 0.1, momentum 0.9, g = 0.5 then 0.4: v1 = -0.05, w1 = 0.95, v2 = -0.085, w2 = 0.865.
MOMENTUM = """
  - id: t-opt
    type: multipart
    prompt: Momentum, fixed numbers.
    calc:
      optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}
      params: 1.0
      gradients: [0.5, 0.4]
    parts:
      - {id: v1, prompt: v1, answer: "steps[0].velocity", tolerance: {sigfigs: 4}}
      - {id: w1, prompt: w1, answer: "steps[0].params", tolerance: {sigfigs: 4}}
      - {id: v2, prompt: v2, answer: "steps[1].velocity", tolerance: {sigfigs: 4}}
      - {id: w2, prompt: w2, answer: "steps[1].params", tolerance: {sigfigs: 4}}
"""


def variant_of(tmp_path, body: str, item_id: str, credit: float = 1):
    folder = tmp_path / f"bank-{credit}"
    folder.mkdir(exist_ok=True)
    text = "topic: t\ntitle: T\nitems:\n" + textwrap.dedent(body.format(credit=credit) if "{credit}" in body else body)
    (folder / "t.yaml").write_text(text)
    cat = load_catalog([folder])
    assert not cat.problems, [str(p) for p in cat.problems]
    return make_variant(cat.items[item_id], 0)


@pytest.fixture
def net(tmp_path):
    return lambda credit=1: variant_of(tmp_path, NETWORK, "t-net", credit)


@pytest.fixture
def opt(tmp_path):
    return variant_of(tmp_path, MOMENTUM, "t-opt")


def parts(v, response):
    g = grade(v, response)
    return g, {p["id"]: p for p in g.parts}


TRUE = {"z1": [0.7, 1.0], "a1": [0.6682, 0.7311], "yhat": 0.4921, "loss": 0.129, "d2": -0.127,
        "dw2": [[-0.0848, -0.0928]]}


def test_the_true_chain_scores_every_part_without_ecf(net):
    g, p = parts(net(), {**TRUE, "dw2": [[-0.0848], [-0.0928]]})  # dW2 = a1^T d2: 0.668188 * -0.126933, ...
    assert g.score == g.max_score == 6 and not any(x["ecf"] for x in p.values())


# A wrong z1 = [0.7, 1.2] carried on: a1 = [sigma(0.7), sigma(1.2)] = [0.668188, 0.768525],
# z2 = 0.5 (0.668188 - 0.768525) = -0.0501685, y_hat = sigma(z2) = 0.487461, L = 1/2 (1 - y_hat)^2 = 0.131348.
def test_ecf_a_wrong_z1_carried_to_a1_yhat_and_the_loss(net):
    g, p = parts(net(), {"z1": [0.7, 1.2], "a1": [0.6682, 0.7685], "yhat": 0.4875, "loss": 0.131})
    assert p["z1"]["score"] == 0.5 and not p["z1"]["ecf"]  # one entry of two is right
    for pid in ("a1", "yhat", "loss"):
        assert p[pid]["score"] == 1.0 and p[pid]["ecf"], p[pid]
    assert p["a1"]["ecf_from"][0]["value"] == [0.7, 1.2]
    assert "Part 2 is marked on your z⁽¹⁾ = [0.7, 1.2] from part 1" in p["a1"]["feedback"]
    assert "Part 3 is marked on your a⁽¹⁾ = [0.6682, 0.7685] from part 2" in p["yhat"]["feedback"]
    assert "Part 3 is marked on" in g.feedback and g.score == 3.5


def test_ecf_a_wrong_a1_after_a_right_z1_is_wrong_itself_but_carried_on(net):
    # a1[1] = 0.7685 is not sigma(1.0) = 0.731059, so a1 earns only its first entry; y_hat and L are
    # right for that a1 (0.487461 and 0.131348, as above), so they are marked on it.
    _, p = parts(net(), {"z1": [0.7, 1.0], "a1": [0.6682, 0.7685], "yhat": 0.4875, "loss": 0.131})
    assert p["a1"]["score"] == 0.5 and not p["a1"]["ecf"]
    assert p["yhat"]["ecf"] and p["loss"]["ecf"] and p["loss"]["score"] == 1.0


def test_a_wrong_answer_is_wrong_on_both_chains(net):
    _, p = parts(net(), {"z1": [0.7, 1.2], "a1": [0.6682, 0.7685], "yhat": 0.3})
    assert p["yhat"]["score"] == 0 and not p["yhat"]["ecf"]


# A wrong output delta -0.2 carried to dW2 = a1^T delta2 = [[0.668188 * -0.2], [0.731059 * -0.2]]
# = [[-0.133638], [-0.146212]].
def test_ecf_a_wrong_output_delta_carried_to_dw(net):
    _, p = parts(net(), {**TRUE, "d2": -0.2, "dw2": [[-0.1336], [-0.1462]]})
    assert p["d2"]["score"] == 0 and p["dw2"]["score"] == 1.0 and p["dw2"]["ecf"]
    assert "your δ⁽²⁾[1] = -0.2 from part 5" in p["dw2"]["feedback"]


# A wrong velocity v1 = -0.5: w1 = 1 - 0.5 = 0.5, v2 = 0.9 * -0.5 - 0.1 * 0.4 = -0.49, w2 = 0.5 - 0.49 = 0.01.
def test_ecf_a_wrong_velocity_carried_to_the_next_parameters(opt):
    g, p = parts(opt, {"v1": -0.5, "w1": 0.5, "v2": -0.49, "w2": 0.01})
    assert p["v1"]["score"] == 0
    assert all(p[k]["score"] == 1.0 and p[k]["ecf"] for k in ("w1", "v2", "w2"))
    assert g.score == 3.0 and "your velocity after step 1 = -0.5 from part 1" in p["w1"]["feedback"]


def test_ecf_credit_is_scaled_by_the_item(net):
    # z1 = [0.8, 1.2]: a1 = [0.689974, 0.768525], z2 = -0.0392753, y_hat = 0.490182: both ECF, at half credit.
    _, p = parts(net(0.5), {"z1": [0.8, 1.2], "a1": [0.69, 0.7685], "yhat": 0.4902})
    assert p["a1"]["score"] == 0.5 and p["yhat"]["score"] == 0.5 and p["a1"]["ecf"] and p["yhat"]["ecf"]
    assert "50% of the points for error carried forward" in p["a1"]["feedback"]
    # ...and the better of the two counts: a1[0] right on the true chain (0.5) ties with half ECF credit.
    _, p = parts(net(0.5), {"z1": [0.7, 1.2], "a1": [0.6682, 0.7685]})
    assert p["a1"]["score"] == 0.5


def test_ecf_credit_zero_turns_it_off(net):
    _, p = parts(net(0), {"z1": [0.7, 1.2], "a1": [0.6682, 0.7685]})
    assert p["a1"]["score"] == 0.5 and not p["a1"]["ecf"]  # only a1[0], right on the true chain


# -- gaming: earlier answers that make a later part trivial earn no ECF (Numbas issue #368)

def test_gaming_a_zero_activation_is_no_source_of_ecf(net):
    # a1 = 0 would make z2 = b2 = 0 and y_hat = sigma(0) = 0.5 whatever the weights.
    _, p = parts(net(), {"z1": [0.7, 1.0], "a1": [0, 0], "yhat": 0.5})
    assert p["yhat"]["score"] == 0 and not p["yhat"]["ecf"]


def test_gaming_a_saturating_z1_earns_no_ecf_downstream(net):
    # z1 = -50: a1 = sigma(-50) ~ 2e-22 (0 to every precision), then y_hat = 0.5 whatever z1 is.
    _, p = parts(net(), {"z1": [-50, -50], "a1": [0, 0], "yhat": 0.5})
    assert p["a1"]["score"] == 0 and "makes this part 0" in p["a1"]["feedback"]
    assert p["yhat"]["score"] == 0 and "same whatever your earlier answer is" in p["yhat"]["feedback"]


def test_gaming_a_positively_saturated_z1_earns_no_ecf(net):
    # z1 = [40, 60]: a1 = [1, 1] to float64 precision whatever z1 is (within 25%): constant.
    _, p = parts(net(), {"z1": [40, 60], "a1": [1, 1]})
    assert p["a1"]["score"] == 0 and not p["a1"]["ecf"]


def test_no_ecf_from_a_missing_or_unreadable_earlier_answer(net):
    _, p = parts(net(), {"a1": [0.6682, 0.7685]})  # z1 missing
    assert p["a1"]["score"] == 0.5 and not p["a1"]["ecf"] and "could be read" in p["a1"]["feedback"]
    _, p = parts(net(), {"z1": ["abc", "1.2"], "a1": [0.6682, 0.7685]})  # z1 unreadable
    assert p["z1"]["format_error"] and not p["a1"]["ecf"]
    _, p = parts(net(), {"z1": ["inf", "1.2"], "a1": [0.6682, 0.7685]})  # z1 not finite
    assert p["z1"]["format_error"] and not p["a1"]["ecf"]


def test_a_part_with_ecf_off_is_marked_on_the_true_chain_only(tmp_path):
    v = variant_of(tmp_path, NETWORK.replace('answer: "layers[0].a", tolerance: {{sigfigs: 4}}',
                                             'answer: "layers[0].a", tolerance: {{sigfigs: 4}}, ecf: false'), "t-net")
    _, p = parts(v, {"z1": [0.7, 1.2], "a1": [0.6682, 0.7685]})
    assert p["a1"]["score"] == 0.5 and not p["a1"]["ecf"]


# -- dependencies from the calculator's graph, and names

def test_dependencies_follow_the_graph(net, opt):
    v = net()
    deps = {k.part.id: [v.payload.parts[j].part.id for j in k.deps] for k in v.payload.parts}
    assert deps == {"z1": [], "a1": ["z1"], "yhat": ["z1", "a1"], "loss": ["z1", "a1", "yhat"],
                    "d2": ["z1", "a1", "yhat"], "dw2": ["z1", "a1", "yhat", "d2"]}
    assert not depends(v.task, "layers[1].delta", "loss")  # nothing is computed from the loss
    deps = {k.part.id: [opt.payload.parts[j].part.id for j in k.deps] for k in opt.payload.parts}
    assert deps == {"v1": [], "w1": ["v1"], "v2": ["v1"], "w2": ["v1", "w1", "v2"]}


@pytest.mark.parametrize("path,name", [("layers[0].a", "a⁽¹⁾"), ("layers[1].delta[0]", "δ⁽²⁾[1]"),
                                       ("layers[0].dW", "∂L/∂W⁽¹⁾"), ("output", "ŷ"), ("loss", "loss L"),
                                       ("steps[1].velocity", "velocity after step 2")])
def test_quantity_names(path, name):
    assert quantity_name(path) == name


def test_mistakes_are_diagnosed_per_part(tmp_path):
    v = variant_of(tmp_path, NETWORK.replace("    parts:", "    mistakes: [no_activation_derivative]\n    parts:"), "t-net")
    # Without sigma'(z2): d2 = y_hat - 1 = 0.492142 - 1 = -0.507858.
    _, p = parts(v, {**TRUE, "d2": -0.5079})
    assert p["d2"]["mistake"] == "no_activation_derivative" and p["d2"]["score"] == 0


# A slip on the activation alone (z right, a wrong), then f' written in a, as the prompts teach
# (sigma'(z) = a (1 - a)): the student takes f' from their own a, so the chain recomputed with f' at
# the true z would refuse them ECF; the chain with f' from their a gives it (calc: given_derivative: a).
HIDDEN = NETWORK.replace('''      - {{id: loss, prompt: L, answer: loss, tolerance: {{sigfigs: 3}}}}
      - {{id: d2, prompt: d2, answer: "layers[1].delta[0]", tolerance: {{sigfigs: 3}}}}
      - {{id: dw2, prompt: dW2, answer: "layers[1].dW", tolerance: {{sigfigs: 3}}}}
''', '''      - {{id: d2, prompt: d2, answer: "layers[1].delta[0]", tolerance: {{sigfigs: 3}}}}
      - {{id: d1, prompt: d1, answer: "layers[0].delta", tolerance: {{sigfigs: 3}}}}
''').replace("t-net", "t-hidden")


# y_hat = 0.6 where sigma(z2) = 0.492142 (z right, a slip): L = 1/2 (1 - 0.6)^2 = 0.08; the student's
# delta2 = (0.6 - 1) * 0.6 * (1 - 0.6) = -0.096 (with sigma' at the true z2 it would be
# -0.4 * 0.249938 = -0.0999753); dW2 = a1^T delta2 = [[0.668188 * -0.096], [0.731059 * -0.096]]
# = [[-0.0641460], [-0.0701817]].
def test_ecf_a_slip_on_the_output_activation_alone_carried_to_delta_with_f_prime_from_a(net):
    g, p = parts(net(), {**TRUE, "dw2": [[-0.0641], [-0.0702]], "yhat": 0.6, "loss": 0.08, "d2": -0.096})
    assert p["yhat"]["score"] == 0 and p["loss"]["ecf"] and p["loss"]["score"] == 1.0
    assert p["d2"]["score"] == 1.0 and p["d2"]["ecf"] and p["d2"]["ecf_derivative"] == "a", p["d2"]
    assert "Part 5 is marked on your ŷ[1] = 0.6 from part 3" in p["d2"]["feedback"]
    assert p["dw2"]["score"] == 1.0 and p["dw2"]["ecf"]
    assert g.score == 5.0


def test_ecf_with_f_prime_at_the_true_z_still_counts(net):
    # the same slip, but sigma' taken at the true z2: -0.4 * 0.249938 = -0.0999753
    _, p = parts(net(), {**TRUE, "yhat": 0.6, "d2": -0.09998})
    assert p["d2"]["score"] == 1.0 and p["d2"]["ecf"] and p["d2"]["ecf_derivative"] == "z"


# z1 = [0.7, 1.0] right, a1 = [0.6682, 0.8] (sigma(1.0) = 0.731059 slipped): z2 = 0.5 * 0.6682 - 0.5 * 0.8
# = -0.0659, y_hat = sigma(-0.0659) = 0.483531; delta2 from y_hat = 0.4835: (0.4835 - 1) * 0.4835 * 0.5165
# = -0.128984; delta1 = delta2 W2^T * a1 (1 - a1) with delta2 = -0.129 and the student's a1:
# [-0.129 * 0.5 * 0.6682 * 0.3318, -0.129 * -0.5 * 0.8 * 0.2] = [-0.0143002, 0.01032]
# (f' at the true z1 would give [-0.0143005, 0.0126815]: its second entry is not theirs).
def test_ecf_a_slip_on_a_hidden_activation_carried_to_the_hidden_delta(tmp_path):
    v = variant_of(tmp_path, HIDDEN, "t-hidden")
    response = {"z1": [0.7, 1.0], "a1": [0.6682, 0.8], "yhat": 0.4835, "d2": -0.129, "d1": [-0.0143, 0.0103]}
    g, p = parts(v, response)
    assert p["a1"]["score"] == 0.5 and p["yhat"]["ecf"] and p["d2"]["ecf"]
    assert p["d1"]["score"] == 1.0 and p["d1"]["ecf"] and p["d1"]["ecf_derivative"] == "a", p["d1"]
    assert g.score == 4.5
    # a d1 that is neither chain's (f' taken as 1) earns nothing
    _, p = parts(v, {**response, "d1": [-0.0645, 0.0645]})
    assert p["d1"]["score"] == 0 and not p["d1"]["ecf"]
