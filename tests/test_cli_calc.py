"""``quizengine calc`` through click's runner: outputs, and one test per bad-spec case."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from quizengine.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

NET = """network:
  layers:
    - {weights: [[0.1, 0.2], [0.3, 0.4]], bias: [0.0, 0.0], activation: sigmoid}
    - {weights: [[0.5], [0.6]], bias: [0.1], activation: sigmoid}
  loss: half_sse
input: [1.0, 0.5]
target: [1.0]
"""


def run(runner, args, stdin=None):
    return runner.invoke(main, args, input=stdin)


# -- outputs

def test_json_output_is_one_object_with_the_contract_fields(runner):
    r = run(runner, ["calc", str(EXAMPLES / "mazur.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) == {"output", "loss", "layers"}
    assert set(data["layers"][0]) == {"z", "a", "delta", "dW", "db", "W_new", "b_new"}
    assert abs(data["loss"] - 0.298371109) < 1e-9


def test_worked_table_shows_every_intermediate_to_six_digits(runner):
    r = run(runner, ["calc", str(EXAMPLES / "mazur.yaml")])
    assert r.exit_code == 0
    out = r.stdout
    for text in ["Layer 0", "Layer 1", "z = a_prev W + b", "delta = dL/da * f'(z)", "dW = a_prev^T delta",
                 "W_new = W - 0.5 dW", "0.298371", "0.358916", "0.149781", "0.59327"]:
        assert text in out, text
    assert max(len(line) for line in out.splitlines()) <= 100


def test_reads_stdin_with_dash(runner):
    r = run(runner, ["calc", "-", "--json"], stdin='{"activation": "tanh", "z": [0.0]}')
    assert r.exit_code == 0
    assert json.loads(r.stdout) == {"value": [0.0], "derivative": [1.0]}


@pytest.mark.parametrize("spec,expect", [
    ("optimizer: {name: adam, learning_rate: 0.1}\nparams: [1.0]\ngradients: [[2.0], [1.0]]\n",
     ["m", "v (2nd moment)", "params w", "0.9"]),
    ("optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}\nparams: [1.0, -2.0]\n"
     "objective: {quadratic: {A: [[2, 0], [0, 0.5]]}}\nsteps: 3\n", ["velocity", "objective", "0.8"]),
    ("activation: {name: softmax}\nz: [1, 2, 3]\n", ["Jacobian", "0.665241"]),
    ("activation: {name: leaky_relu, alpha: 0.1}\nz: [-2, 0, 3]\n", ["alpha=0.1", "-0.2"]),
    ("keras: {input_dim: 4, layers: [8, 3]}\n", ["Total params: 67"]),
])
def test_worked_tables_of_other_tasks(runner, spec, expect):
    r = run(runner, ["calc", "-"], stdin=spec)
    assert r.exit_code == 0, r.stderr
    for text in expect:
        assert text in r.stdout, text


def test_batch_table_and_json(runner):
    spec = NET.replace("input: [1.0, 0.5]", "input: [[1.0, 0.5], [0.2, 0.1]]").replace("target: [1.0]", "target: [[1.0], [0.0]]")
    r = run(runner, ["calc", "-", "--json"], stdin=spec)
    assert r.exit_code == 0
    assert len(json.loads(r.stdout)["layers"][0]["delta"]) == 2
    assert "a batch of 2 examples" in run(runner, ["calc", "-"], stdin=spec).stdout


# -- bad specs: exit 2, `error: ...` naming the key, never a traceback

BAD = [
    # names, with the closest valid one suggested
    ("unknown-activation", NET.replace("activation: sigmoid}\n  loss", "activation: sigmiod}\n  loss"),
     r"network\.layers\[1\]\.activation: unknown activation 'sigmiod'; did you mean 'sigmoid'\?"),
    ("unknown-loss", NET.replace("loss: half_sse", "loss: half_ssee"), r"network\.loss: unknown loss 'half_ssee'; did you mean 'half_sse'"),
    ("unknown-optimizer", "optimizer: {name: adamm, learning_rate: 0.1}\nparams: 1.0\ngradients: [1.0]\n",
     r"optimizer\.name: unknown optimizer 'adamm'; did you mean 'adam'"),
    # shapes, naming the layer and both shapes
    ("weights-rows", NET.replace("[[0.5], [0.6]]", "[[0.5], [0.6], [0.7]]"),
     r"network\.layers\[1\]\.weights: shape \(3, 1\) needs 2 rows .* layer 0 has 2 units"),
    ("input-size", NET.replace("input: [1.0, 0.5]", "input: [1.0, 0.5, 0.2]"),
     r"network\.layers\[0\]\.weights: shape \(2, 2\) needs 3 rows .*the input has 3"),
    ("bias-shape", NET.replace("bias: [0.1]", "bias: [0.1, 0.2]"),
     r"network\.layers\[1\]\.bias: shape \(2,\) does not match weights \(2, 1\); needs \(1,\)"),
    ("target-shape", NET.replace("target: [1.0]", "target: [1.0, 0.0]"),
     r"target: shape \(2,\) does not match the output's shape \(1,\)"),
    ("gradient-shape", "optimizer: {name: sgd, learning_rate: 0.1}\nparams: [1.0, 2.0]\ngradients: [[1.0]]\n",
     r"gradients\[0\]: shape \(1,\) does not match params \(2,\)"),
    ("ragged", NET.replace("[[0.5], [0.6]]", "[[0.5], [0.6, 0.1]]"), r"network\.layers\[1\]\.weights: rows of different lengths"),
    # values
    ("non-numeric", NET.replace("input: [1.0, 0.5]", "input: [1.0, abc]"), r"input\[1\]: expected a number, got the string 'abc'"),
    ("nan", NET.replace("bias: [0.1]", "bias: [.nan]"), r"network\.layers\[1\]\.bias\[0\]: nan is not a finite number"),
    ("inf", NET.replace("target: [1.0]", "target: [.inf]"), r"target\[0\]: inf is not a finite number"),
    ("boolean", NET.replace("input: [1.0, 0.5]", "input: [true, 0.5]"), r"input\[0\]: expected a number, got a boolean"),
    ("nesterov-not-bool", "optimizer: {name: sgd, learning_rate: 0.1, nesterov: 1}\nparams: 1.0\ngradients: [1.0]\n",
     r"optimizer\.nesterov: expected true or false"),
    ("overflow", "network: {layers: [{weights: [[10.0]], bias: [0.0], activation: linear}], loss: mse}\n"
     "input: [1.0e308]\ntarget: [0.0]\n", r"spec: the numbers overflow float64"),
    # keys
    ("missing-target", NET.replace("target: [1.0]\n", ""), r"spec: missing key 'target'"),
    ("missing-learning-rate", "optimizer: {name: sgd}\nparams: 1.0\ngradients: [1.0]\n", r"optimizer: missing key 'learning_rate'"),
    ("missing-steps", "optimizer: {name: sgd, learning_rate: 0.1}\nparams: [1.0]\nobjective: {quadratic: {A: [[1.0]]}}\n",
     r"missing key 'steps'"),
    ("unknown-key", NET + "update: {learning_rte: 0.5}\n", r"update: unknown key 'learning_rte'; did you mean 'learning_rate'"),
    ("unknown-layer-key", NET.replace("activation: sigmoid}\n  loss", "activation: sigmoid, dropuot: 0.5}\n  loss"),
     r"network\.layers\[1\]: unknown key 'dropuot'; did you mean 'dropout'"),
    ("alpha-on-sigmoid", NET.replace("activation: sigmoid}\n  loss", "activation: sigmoid, alpha: 0.5}\n  loss"),
     r"network\.layers\[1\]\.alpha: the activation 'sigmoid' takes no alpha"),
    ("no-task", "netwrk: {}\n", r"spec: needs one of the keys .*unknown key 'netwrk'.*did you mean 'network'"),
    ("two-tasks", "activation: tanh\nz: [1]\nkeras: {input_dim: 1, layers: [1]}\n", r"more than one task"),
    ("empty-layers", "network: {layers: [], loss: mse}\ninput: [1.0]\ntarget: [1.0]\n", r"network\.layers: is empty"),
    ("gradients-and-objective", "optimizer: {name: sgd, learning_rate: 0.1}\nparams: [1.0]\ngradients: [[1.0]]\n"
     "objective: {quadratic: {A: [[1.0]]}}\nsteps: 1\n", r"exactly one of 'gradients'"),
    ("too-few-gradients", "optimizer: {name: sgd, learning_rate: 0.1}\nparams: 1.0\ngradients: [1.0]\nsteps: 3\n",
     r"steps: 3 steps need 3 gradients"),
    # given values: the path, with the closest one; the shape
    ("given-unknown-path", NET + "given:\n  layers[0].zz: [1.0, 2.0]\n",
     r"given: 'layers\[0\]\.zz' is not a quantity of this task; did you mean 'layers\[0\]\.z'"),
    ("given-shape", NET + "given:\n  layers[0].a: [1.0]\n",
     r"given\.layers\[0\]\.a: shape \(1,\) does not match layers\[0\]\.a\[\.\.\.\], shape \(2,\)"),
    ("given-no-update", NET + "given:\n  layers[1].W_new: [[1.0], [2.0]]\n", r"'layers\[1\]\.W_new' needs an 'update'"),
    # infinite cross-entropy
    ("bce-output-one", "network: {layers: [{weights: [[40.0]], bias: [0.0], activation: sigmoid}], "
     "loss: binary_crossentropy}\ninput: [1.0]\ntarget: [1.0]\n", r"binary_crossentropy: the output reaches exactly 1"),
    ("cce-output-zero", "network: {layers: [{weights: [[800.0, -800.0]], bias: [0.0, 0.0], activation: softmax}], "
     "loss: categorical_crossentropy}\ninput: [1.0]\ntarget: [0.0, 1.0]\n", r"categorical_crossentropy: the output reaches exactly 0"),
    # shape of the document
    ("not-a-mapping", "- 1\n- 2\n", r"spec: expected a mapping \(key: value\), got a list"),
    ("empty-file", "", r"spec: expected a mapping .*got nothing"),
    ("malformed-yaml", "network:\n  layers: [1, 2\n  loss: mse\n", r"<stdin>:\d+:\d+: malformed YAML"),
]


@pytest.mark.parametrize("spec,pattern", [(s, p) for _, s, p in BAD], ids=[n for n, _, _ in BAD])
def test_bad_spec_exits_2_naming_the_key(runner, spec, pattern):
    for args in (["calc", "-"], ["calc", "-", "--json"]):
        r = run(runner, args, stdin=spec)
        assert r.exit_code == 2, (r.stdout, r.stderr)
        assert r.stdout == ""
        assert r.stderr.startswith("error: ")
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert re.search(pattern, r.stderr), r.stderr


def test_malformed_json_file_names_line_and_column(runner, tmp_path):
    p = tmp_path / "spec.json"
    p.write_text('{"activation": "tanh",\n "z": [1, 2,]\n}\n')
    r = run(runner, ["calc", str(p)])
    assert r.exit_code == 2
    assert f"{p}:2:" in r.stderr and "malformed JSON" in r.stderr


def test_malformed_yaml_file_names_the_line(runner, tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text("activation: tanh\nz: [1, 2\nfoo: bar\n")
    r = run(runner, ["calc", str(p)])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: {p}:3:") and "malformed YAML" in r.stderr


def test_missing_file(runner, tmp_path):
    r = run(runner, ["calc", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "cannot read" in r.stderr and "No such file" in r.stderr


def test_numbers_written_as_yaml_strings_are_accepted(runner):
    # YAML 1.1 reads 1e-3 (no dot) as a string; a user should not have to know that.
    r = run(runner, ["calc", "-", "--json"], stdin="optimizer: {name: sgd, learning_rate: 1e-1}\nparams: 1.0\ngradients: [1.0]\n")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["steps"][0]["params"] == pytest.approx(0.9)


def test_help_lists_calc(runner):
    r = run(runner, ["--help"])
    assert r.exit_code == 0 and "calc" in r.stdout


def test_given_values_are_listed_in_the_worked_table(runner):
    # NET with a0 given as (0, 0): z1 = 0.1, so the output is sigmoid(0.1)
    r = run(runner, ["calc", "-"], stdin=NET + "given:\n  layers[0].a: [0.0, 0.0]\n")
    assert r.exit_code == 0
    assert "Given (used in place of the computed values, and carried forward):" in r.stdout
    assert "layers[0].a = [0, 0]" in r.stdout and "0.524979" in r.stdout


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_runs(runner, example):
    assert run(runner, ["calc", str(EXAMPLES / example), "--json"]).exit_code == 0


def test_mazur_given_example_carries_the_hidden_activations(runner):
    # a_h = (0.6, 0.6): z_o1 = 0.6 * 0.40 + 0.6 * 0.45 + 0.60 = 1.11, z_o2 = 0.6 * 0.50 + 0.6 * 0.55 + 0.60 = 1.23
    out = json.loads(run(runner, ["calc", str(EXAMPLES / "mazur-given.yaml"), "--json"]).stdout)
    assert out["layers"][1]["z"] == pytest.approx([1.11, 1.23], abs=1e-12)
    assert out["layers"][0]["a"] == [0.6, 0.6]
