"""What a float32 port computes differently from the unix port (whose Python floats are doubles).

The C core computes in float32 (tests/test_c_core.py runs it on the host). The only float work done
by Python on the device is in the loader: the tree weight 1 / n_trees (and regression leaf values,
parsed from the shortest decimal of a float32). These tests check that float32 and double give the same.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor

from mpyml import trees
from mpyml.formats import trees as trees_format


def test_tree_weight_same_in_float32_and_double():
    n = np.arange(1, 20001, dtype=np.float64)
    in_float32 = np.float32(1.0) / n.astype(np.float32)
    in_double = (1.0 / n).astype(np.float32)
    np.testing.assert_array_equal(in_float32, in_double)


@pytest.mark.parametrize("load", [load_digits, load_wine, load_breast_cancer])
def test_soft_vote_leaves_are_scikit_learns_float64_probabilities(load):
    """The loader does no float work for soft-vote leaves (the C core divides in integers): the stored
    counts (or float64 probabilities) give exactly scikit-learn's leaf probabilities."""
    X, y = load(return_X_y=True)
    for estimator in (RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
                      ExtraTreesClassifier(n_estimators=20, max_depth=5, random_state=0),
                      RandomForestClassifier(n_estimators=5, class_weight="balanced", random_state=0)):
        forest = trees.forest_from_sklearn(estimator.fit(X, y))
        stored = trees.lower(forest)
        expected = {tuple(t.proba[n]) for t in forest.trees for n in np.flatnonzero(t.left < 0)}
        assert {tuple(p) for p in stored.leaf_proba64()} == expected


def test_random_weights_same_in_float32_and_double():
    rng = np.random.default_rng(0)
    totals = rng.integers(1, 2**24, size=200000)
    weights = (rng.random(200000) * totals).astype(np.int64)
    np.testing.assert_array_equal(weights.astype(np.float32) / totals.astype(np.float32),
                                  (weights / totals).astype(np.float32))


def test_float32_values_written_exactly():
    X, y = load_digits(return_X_y=True)
    reg = RandomForestRegressor(n_estimators=5, max_depth=6, random_state=0).fit(X.astype(np.float32), y * 1.37)
    stored = trees.lower(trees.forest_from_sklearn(reg), dtype="float32")
    again = trees_format.read(trees_format.dumps(stored).splitlines(True))
    np.testing.assert_array_equal(again.threshold, stored.threshold)
    np.testing.assert_array_equal(again.leaf_values(), stored.leaf_values())


def test_threshold_rules():
    assert trees.float32_threshold(7.5) == np.float32(7.5)
    t = 0.1  # not a float32: the stored value is the float32 just below
    t32 = trees.float32_threshold(t)
    assert float(t32) <= t < float(np.nextafter(t32, np.float32(np.inf)))
    assert trees.float32_threshold(1e39) == np.finfo(np.float32).max
    assert trees.float32_threshold(-1e39) == -np.inf
    assert trees.int16_threshold(7.5) == 7
    assert trees.int16_threshold(-7.5) == -8
    assert trees.int16_threshold(32766.5) == 32766
    assert trees.int16_threshold(32767.0) == "left"
    assert trees.int16_threshold(-32768.0) == -32768
    assert trees.int16_threshold(-32768.5) == "right"


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_float32_port_predicts_as_the_double_port_and_scikit_learn(tmp_path, emltrees_x64, voting):
    # the loader's Python float work (soft-vote probabilities) really runs in float32 here
    import mpyml
    from mpyml import device

    X, y = load_digits(return_X_y=True)
    estimator = RandomForestClassifier(n_estimators=15, max_depth=8, random_state=0).fit(X[:1200], y[:1200])
    path = tmp_path / "digits.csv"
    stored = mpyml.export(estimator, path, feature_dtype="float32", voting=voting)
    pred_double, proba_double = device.predict_trees(path, X[1200:], stored)
    pred_float32, proba_float32 = device.predict_trees(path, X[1200:], stored, float32=True)
    assert np.array_equal(pred_float32, pred_double)
    assert proba_float32.tobytes() == proba_double.tobytes()
    if voting == "soft":
        np.testing.assert_array_equal(pred_float32, estimator.predict(X[1200:]))
