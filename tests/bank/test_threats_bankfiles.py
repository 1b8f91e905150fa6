"""Issue 9, bank side: instructor inputs have budgets, and the loader reads only regular files.

One test per threat, named after it. Every budget error is checked at its exact LINE:COL in the
validator's compiler form; the positions are counted by hand from the YAML written here.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from quizengine.bank import expr as expressions
from quizengine.bank import loader
from quizengine.bank.params import ParamError, evaluate
from quizengine.cli import main
from quizengine.services import editor

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample"

# The classic attack, 9 levels of 9: about 10^9 nodes from 342 bytes.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

DERIVED_BANK = """\
topic: t
title: T
items:
  - id: t-power
    type: numeric
    prompt: "How many parameters has a Dense layer of {{h}} units on {{n}} inputs?"
    params:
      h: {choice: [1, 2]}
    derived:
      n: "EXPR"
    calc:
      keras: {input_dim: "$n", layers: ["$h"]}
    answer: total_params
    explanation: Weights and biases.
"""


def validate(runner, *paths: Path) -> tuple[int, list[str]]:
    r = runner.invoke(main, ["validate", *map(str, paths)])
    return r.exit_code, [line for line in r.output.splitlines() if re.match(r"^\S+:\d+:\d+: (error|warning): ", line)]


def test_threat_billion_laughs_yaml_is_refused_by_the_node_budget(runner, tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS.encode()) < 400
    code, lines = validate(runner, path)
    assert code == 1
    # a..e expand to 10, 91, 820, 7381 and 66430 nodes (74,738 with the root and keys); the first
    # *e on line 6 takes the document past 100,000.
    assert lines == [f"{path}:6:8: error: YAML: alias *e expands the document to more than 100,000 nodes "
                     "(the limit, counted after expanding aliases)"]
    doc = loader.parse_yaml(BILLION_LAUGHS, "x.yaml")
    assert doc.data is None and len(doc.problems) == 1


@pytest.mark.parametrize("text,where,alias", [
    ("a: &a [1, *a]\n", "1:11", "a"),  # in a flow sequence
    ("base: &b\n  x: 1\n  more:\n    - *b\n", "4:7", "b"),  # deeper down, in a block sequence
    ("top: &t\n  self: *t\n", "2:9", "t"),  # a mapping value
])
def test_threat_recursive_alias_is_refused_not_a_crash(runner, tmp_path, text, where, alias):
    path = tmp_path / "recursive.yaml"
    path.write_text(text)
    code, lines = validate(runner, path)
    assert code == 1
    assert lines == [f"{path}:{where}: error: YAML: recursive alias *{alias}: it stands inside the node anchored "
                     f"&{alias}, which would then contain itself forever; an alias may only repeat a finished node"]


def test_threat_deep_nesting_is_refused_by_the_depth_budget(runner, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 500 + "]" * 500)  # within libyaml's own limit of 1000, past the evaluator's stack
    code, lines = validate(runner, path)
    assert code == 1
    assert lines == [f"{path}:1:102: error: YAML: nested more than 100 levels deep (the limit)"]


def test_threat_integer_of_thousands_of_digits_in_yaml_is_a_problem_not_a_crash(runner, tmp_path):
    path = tmp_path / "digits.yaml"
    path.write_text("topic: t\ntitle: " + "9" * 5000 + "\nitems: []\n")
    code, lines = validate(runner, path)
    assert code == 1
    assert lines[0].startswith(f"{path}:2:8: error: YAML value: Exceeds the limit (4300 digits)")


def test_threat_huge_power_in_derived_is_refused_with_its_limit(runner, tmp_path):
    path = tmp_path / "power.yaml"
    path.write_text(DERIVED_BANK.replace("EXPR", "(10**10**6) % 7"))
    code, lines = validate(runner, path)
    assert code == 1
    assert lines == [f"{path}:10:10: error: t-power: seed 0: derived 'n' = '(10**10**6) % 7': the power "
                     "10 ** 1000000 would have about 1,000,001 digits: integers in expressions are limited "
                     "to 10**100 in absolute value"]
    # the same bank with a small power is valid: the limit, not the item, is what refused it
    path.write_text(DERIVED_BANK.replace("EXPR", "(10**6) % 7"))
    assert validate(runner, path) == (0, [])


def test_threat_shift_operator_in_derived_is_refused_at_its_place(runner, tmp_path):
    path = tmp_path / "shift.yaml"
    path.write_text(DERIVED_BANK.replace("EXPR", "1 << 10**9"))
    code, lines = validate(runner, path)
    assert code == 1
    assert lines == [f"{path}:10:10: error: t-power: derived 'n': the operator LShift is not allowed "
                     "(only + - * / // % ** @)"]


@pytest.mark.parametrize("expr,limit", [
    # integers
    ("(10**10**6) % 7", r"limited to 10\*\*100 in absolute value"),
    ("2**10**10", r"limited to 10\*\*100"),
    ("x ** x ** x", r"the power 100 \*\* 100 would have about 201 digits"),
    ("int(1e308)", r"an integer of 309 digits: integers in expressions are limited to 10\*\*100"),
    ("int(1e99) * int(1e99)", r"an integer of 198 digits"),
    # arrays, refused before they are made
    ("zeros(10**9)", r"an array of 1,000,000,000 elements: arrays in expressions are limited to 10,000"),
    ("eye(10**5)", r"limited to 10,000 elements"),
    ("outer(ones(10000), ones(10000))", r"an array of 100,000,000 elements"),
    ("outer(ones(10000), ones(1)) + outer(ones(1), ones(10000))", r"an array of 100,000,000 elements"),
    ("outer(ones(10000), ones(1)) @ outer(ones(1), ones(10000))", r"an array of 100,000,000 elements"),
    # the text itself
    ("'a' * 10**9", r"constant 'a' is not a number"),
    ("1" * 1001, r"an expression of 1,001 characters: the limit is 1,000"),
    ("-" * 101 + "1", r"nested more than 100 levels deep"),
    ("-" * 999 + "1", r"nested more than 100 levels deep"),
    ("1 in 2", r"the comparison In is not allowed"),
])
def test_threat_costly_derived_expression_is_refused_stating_its_limit(expr, limit):
    with pytest.raises(ParamError, match=limit):
        evaluate(expr, {"x": 100})


@pytest.mark.parametrize("expr,value", [
    ("10**100", 10**100),  # the largest integer allowed
    ("2**332", 2**332),
    ("3 ** -10**100", 0.0),  # a negative power is a float, never a big integer
    ("sum(outer(ones(100), ones(100)))", 10_000.0),  # the largest array allowed
])
def test_expressions_within_the_budgets_still_evaluate(expr, value):
    assert evaluate(expr, {}) == value


def test_threat_symlink_to_the_secret_key_is_skipped_and_never_echoed(runner, tmp_path):
    secret = "9f2c1e0d8b7a6f5e4d3c2b1a0f9e8d7c-not-a-bank"
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text(secret)
    banks = tmp_path / "banks"
    banks.mkdir()
    (banks / "sample.yaml").write_text((SAMPLE / "sample.yaml").read_text())
    (banks / "leak.yaml").symlink_to(instance / "secret_key")
    (banks / "linked").symlink_to(instance, target_is_directory=True)  # a link to a folder isn't followed
    r = runner.invoke(main, ["validate", str(banks)])
    assert secret not in r.output
    assert f"{banks / 'leak.yaml'}:1:1: warning: skipped: a symbolic link" in r.output
    assert r.exit_code == 0  # the regular bank is still loaded and valid
    # named on the command line, it is skipped too
    r = runner.invoke(main, ["validate", str(banks / "leak.yaml")])
    assert secret not in r.output and "skipped: a symbolic link" in r.output
    # the editor copies the banks to validate an edit: the link is neither copied nor listed
    assert editor.bank_files(banks) == ["sample.yaml"]
    problems = editor.validate_candidate(banks, "sample.yaml", "topic: [broken\n", seeds=1).problems
    assert problems and all(secret not in str(p) for p in problems)
    # read directly (a link planted after the folder was listed), it is refused without being read
    doc = loader.read_yaml(banks / "leak.yaml")
    assert [p.message for p in doc.problems] == ["skipped: a symbolic link (bank files must be regular files)"]


def test_threat_fifo_in_the_banks_folder_is_skipped_without_blocking(runner, tmp_path):
    banks = tmp_path / "banks"
    banks.mkdir()
    (banks / "sample.yaml").write_text((SAMPLE / "sample.yaml").read_text())
    os.mkfifo(banks / "pipe.yaml")  # opening it for reading would wait for a writer forever
    r = runner.invoke(main, ["validate", str(banks)])
    assert f"{banks / 'pipe.yaml'}:1:1: warning: skipped: not a regular file" in r.output
    assert r.exit_code == 0
    assert stat.S_ISFIFO(os.lstat(banks / "pipe.yaml").st_mode)


def test_threat_oversized_bank_file_is_refused_without_parsing(runner, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("topic: t\n" + "#" * loader.MAX_FILE_BYTES)
    code, lines = validate(runner, path)
    assert code == 1
    assert lines == [f"{path}:1:1: error: the file has {loader.MAX_FILE_BYTES + 9:,} bytes; a bank file is "
                     "limited to 1,048,576 (1 MiB)"]


def test_every_budget_is_documented_in_the_banks_readme():
    readme = (ROOT / "banks" / "README.md").read_text()
    for figure in (f"{loader.MAX_NODES:,}", f"{loader.MAX_DEPTH}", "1 MiB", f"10^{expressions.MAX_INT_DIGITS}",
                   f"{expressions.MAX_ELEMENTS:,}", f"{expressions.MAX_EXPR_CHARS:,}", f"{expressions.MAX_EXPR_DEPTH}"):
        assert figure in readme, figure
