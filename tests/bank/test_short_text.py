"""Short-text answers: normalizing (case, punctuation and space around, hyphen vs space, Unicode
quotes and dashes), synonyms, and a table of accepted and refused answers for every shipped item."""

from __future__ import annotations

from pathlib import Path

import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.types.short_text import canonical
from quizengine.bank.variant import make_variant
from quizengine.grading import grade

BANKS = Path(__file__).resolve().parents[2] / "banks"

# item id -> (accepted, refused)
TABLE: dict[str, tuple[list[str], list[str]]] = {
    # activation functions, backpropagation, optimizers
    "bp-delta-name": (["error", "Error.", "the error", " ERROR ", "\u201cerror\u201d"],
                      ["delta", "gradient", "cost", "the error signal"]),
    "opt-adam-name": (["Adam", "ADAM", "adam.", "Adam optimizer", "Adam optimiser", "\u2018Adam\u2019"],
                      ["AdamW", "AdaGrad", "RMSprop", "Adamax", "momentum"]),
    # vocabulary
    "vocab-st-epoch": (["epoch", "Epoch.", "an epoch", "epochs", "one training epoch"],
                       ["iteration", "batch", "step", "epoch size"]),
    "vocab-st-overfitting": (["Overfitting.", "over-fitting", "over\u2013fitting", "Over fitting!", "overfit"],
                             ["underfitting", "fitting", "overtraining data"]),
    "vocab-st-dense": (["Dense", "Dense.", "keras.layers.Dense", "tf.keras.layers.Dense", "Dense()", "dense layer"],
                       ["Conv2D", "Linear", "Flatten", "fully connected"]),
    "vocab-st-inference": (["inference", "Inference.", "model inference", "inferring"],
                           ["training", "prediction error", "serving"]),
    "vocab-st-perceptron": (["perceptron", "Perceptron.", "a perceptron", "single-layer perceptron",
                             "single layer perceptron"],
                            ["neuron", "multilayer perceptron", "sigmoid"]),
    "vocab-st-one-hot": (["one-hot", "One hot", "onehot", "one\u2011hot encoding", "One-hot encoded."],
                         ["label encoding", "binary", "two-hot", "one"]),
    "vocab-st-convergence": (["Convergence.", "convergence", "  CONVERGED ", "\"convergence\"", "model convergence"],
                             ["divergence", "overfitting", "plateau"]),
    # weight initialization, schedules and regularization, tuning and Keras
    "init-keras-default": (["glorot_uniform", "Glorot uniform", "glorot-uniform", "GlorotUniform", "\"glorot_uniform\"",
                            "`glorot_uniform`", "xavier uniform", "keras.initializers.GlorotUniform()"],
                           ["glorot_normal", "he_normal", "he_uniform", "lecun_uniform", "random_uniform", "xavier normal",
                            "uniform", "zeros"]),
    "reg-weight-decay-name": (["weight decay", "Weight decay.", "WEIGHT DECAY", "weight-decay", "weight_decay",
                               "weightdecay", "L2 weight decay"],
                              ["decay", "learning rate decay", "L2 regularization", "weight penalty", "dropout"]),
    "tk-early-stopping-name": (["EarlyStopping", "early stopping", "Early-Stopping", "earlystopping", "EarlyStopping()",
                                "`EarlyStopping`", "keras.callbacks.EarlyStopping", "tf.keras.callbacks.EarlyStopping()"],
                               ["ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN", "EarlyStop", "early", "stopping",
                                "patience"]),
}


@pytest.fixture(scope="module")
def shipped():
    cat = load_catalog([BANKS])
    return {i: item for i, item in cat.items.items() if item.model.type == "short_text"}


def test_the_table_covers_every_shipped_short_text_item(shipped):
    assert sorted(TABLE) == sorted(shipped)


@pytest.mark.parametrize("item_id", sorted(TABLE))
def test_shipped_short_text_accepts_and_refuses(shipped, item_id):
    v = make_variant(shipped[item_id], 0)
    accepted, refused = TABLE[item_id]
    for answer in accepted:
        assert grade(v, answer).correct, (item_id, answer)
    for answer in refused:
        g = grade(v, answer)
        assert g.score == 0 and g.format_error is None, (item_id, answer)


@pytest.mark.parametrize("raw, expected", [
    # case and surrounding space and punctuation
    ("Convergence.", "convergence"),
    ("  Overfitting! ", "overfitting"),
    ("(epoch)", "epoch"),
    ("\u00abAdam\u00bb", "adam"),
    # inner punctuation and symbols stay
    ("keras.layers.Dense", "keras.layers.dense"),
    ("C++", "c++"),
    # hyphen vs space, Unicode dashes and quotes
    ("one-hot", "one hot"),
    ("one\u2013hot", "one hot"),
    ("one \u2014 hot", "one hot"),
    ("Nesterov\u2019s momentum", "nesterov's momentum"),
    # compatibility forms and inner space
    ("\uff21dam", "adam"),
    ("mini   batch", "mini batch"),
])
def test_canonical_normalizes_what_a_reader_would_not_count(raw, expected):
    assert canonical(raw) == expected


def test_canonical_keeps_case_when_asked():
    assert canonical(" ReLU. ", case_sensitive=True) == "ReLU"


def test_pattern_sees_hyphens_kept_or_as_spaces(catalog):
    v = make_variant(catalog.items["s-text"], 0)  # pattern 'hyper-?parameters?'
    for answer in ("Hyper-parameters.", "hyperparameter", "hyper\u2010parameter"):
        assert grade(v, answer).correct, answer
    assert not grade(v, "hyper parameter x").correct
