"""Random forests on random data, with inputs placed exactly on (and next to) the stored thresholds."""

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mpyml import device, trees, verify
from mpyml.formats import trees as trees_format

ESTIMATORS = [DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier,
              DecisionTreeRegressor, RandomForestRegressor, ExtraTreesRegressor]


def random_case(seed):
    rng = np.random.default_rng(seed)
    dtype = ("int16", "float32")[seed % 2]
    cls = ESTIMATORS[seed % len(ESTIMATORS)]
    n_features = int(rng.integers(1, 40))
    n_rows = int(rng.integers(20, 400))
    if dtype == "int16":
        # Full int16 range, including values at the extremes.
        X = rng.integers(-32768, 32768, size=(n_rows, n_features)).astype(np.int16)
    else:
        X = (rng.standard_normal((n_rows, n_features)) * 10 ** rng.uniform(-3, 3)).astype(np.float32)
        if seed % 4 == 1 and cls in (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier):
            X[rng.random(X.shape) < 0.1] = np.nan
    if cls in (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier):
        y = rng.integers(0, int(rng.integers(2, 7)), size=n_rows)
    else:
        y = rng.standard_normal(n_rows) * 100
    params = {"random_state": seed, "max_depth": int(rng.integers(1, 12))}
    if cls not in (DecisionTreeClassifier, DecisionTreeRegressor):
        params["n_estimators"] = int(rng.integers(1, 25))
    return cls(**params).fit(X, y), X, dtype, rng


def accepts_nan(estimator, rows) -> bool:
    try:
        estimator.predict(np.full((1, rows.shape[1]), np.nan, dtype=np.float32))
    except ValueError:  # this scikit-learn estimator does not take missing values
        return False
    return True


def inputs_on_thresholds(stored, X, rng, estimator):
    """Rows whose features sit exactly on stored thresholds and one step above them."""
    rows = [X[rng.integers(0, len(X), size=50)]]
    for i in rng.integers(0, max(stored.n_nodes, 1), size=min(stored.n_nodes, 100)):
        row = X[rng.integers(0, len(X))].copy()
        t = stored.threshold[i]
        f = stored.feature[i]
        for value in (t, t + 1 if stored.dtype == "int16" else np.nextafter(np.float32(t), np.float32(np.inf))):
            if (stored.dtype == "int16" and not -32768 <= value <= 32767) or not np.isfinite(value):
                continue  # (trained with NaN, scikit-learn splits NaN from everything else at threshold inf)
            row = row.copy()
            row[f] = value
            rows.append(row[None, :])
    rows = np.concatenate(rows).astype(X.dtype)
    if stored.dtype == "float32" and stored.kind == "classifier" and accepts_nan(estimator, rows):
        # NaN features: some trees learned where NaN goes (training rows had NaN), the others send it
        # to the child that had more samples; both as scikit-learn's missing_go_to_left says.
        rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


@pytest.mark.parametrize("seed", range(36))
def test_random_forest_random_inputs(emltrees_x64, tmp_path, seed):
    estimator, X, dtype, rng = random_case(seed)
    stored = trees.lower(trees.forest_from_sklearn(estimator), dtype=dtype)
    X_test = inputs_on_thresholds(stored, X, rng, estimator)
    path = tmp_path / "model.csv"
    trees_format.save(stored, path)
    pred, proba = device.predict_trees(path, X_test, stored)
    X_sklearn = X_test.astype(np.float32)
    np.testing.assert_array_equal(pred, stored.predict_index(X_test))
    if stored.kind == "classifier":
        np.testing.assert_array_equal(proba, stored.predict_proba(X_test))
        np.testing.assert_allclose(proba, estimator.predict_proba(X_sklearn), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(stored.classes[pred], estimator.predict(X_sklearn))
    else:
        assert verify.regression_agrees(pred, estimator.predict(X_sklearn)).all()


@pytest.mark.parametrize("seed", range(4))
def test_int16_thresholds_outside_the_int16_range(emltrees_x64, tmp_path, seed):
    """Trained on values beyond int16, predicted on int16 rows: always-left/right nodes are removed."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-200000, 200000, size=(400, 3))
    X[:, 0] = rng.uniform(-33500, 33500, size=400)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1000).astype(int)
    estimator = RandomForestClassifier(n_estimators=8, random_state=seed).fit(X, y)
    stored = trees.lower(trees.forest_from_sklearn(estimator), dtype="int16")
    sklearn_nodes = sum(e.tree_.node_count - e.tree_.n_leaves for e in estimator.estimators_)
    assert stored.n_nodes < sklearn_nodes
    X_test = rng.integers(-32768, 32768, size=(500, 3)).astype(np.int16)
    X_test[:10] = [[-32768, -32768, 32767]] * 5 + [[32767, 32767, -32768]] * 5
    path = tmp_path / "model.csv"
    trees_format.save(stored, path)
    pred, proba = device.predict_trees(path, X_test, stored)
    np.testing.assert_array_equal(stored.classes[pred], estimator.predict(X_test.astype(np.float32)))
    np.testing.assert_allclose(proba, estimator.predict_proba(X_test.astype(np.float32)), atol=1e-6)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_many_features(emltrees_x64, tmp_path, dtype):
    """No 127-feature limit: 3000 features, the informative ones beyond index 1024."""
    rng = np.random.default_rng(1)
    X = rng.integers(-1000, 1000, size=(300, 3000)).astype(np.int16)
    y = (X[:, 2999] > 0).astype(int) + (X[:, 1500] > 200).astype(int)
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    stored = trees.lower(trees.forest_from_sklearn(estimator), dtype=dtype)
    assert stored.feature.max() > 1024
    path = tmp_path / "model.csv"
    trees_format.save(stored, path)
    pred, proba = device.predict_trees(path, X[:100], stored)
    np.testing.assert_array_equal(stored.classes[pred], estimator.predict(X[:100].astype(np.float32)))


def test_node_storage_bytes():
    """Per decision node: 6 bytes with int16 features and thresholds in -128..127 (int8 thresholds,
    one-byte feature indices, two int16 children), 9 with float32 features (up to 128 features)."""
    X = np.random.default_rng(0).integers(0, 100, size=(500, 4))
    estimator = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, X[:, 0] % 3)
    forest = trees.forest_from_sklearn(estimator)
    for dtype, per_node in (("int16", 6), ("float32", 9)):
        stored = trees.lower(forest, dtype=dtype)
        assert stored.threshold_dtype == ("int8" if dtype == "int16" else "float32")
        n_pairs, max_count, n_totals = stored.pair_stats()
        leaves = ((trees.pair_bytes(stored.n_classes, max_count) * n_pairs + 3) & ~3) + 8 * n_totals
        fixed = 4 * stored.n_trees + leaves + 4 * stored.n_classes
        assert stored.ram_bytes() - fixed <= per_node * stored.n_nodes + 12
        assert stored.ram_bytes() - fixed >= per_node * stored.n_nodes


def tie_forest(seed):
    """Forests made to tie: depth-1 or 2 trees on a handful of rows of one small integer feature, so
    the trees' leaf probabilities are fractions like 1/3 and 2/3 whose float64 sums meet or miss by an ulp."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 13))
    X = rng.integers(0, 8, size=(n, 1)).astype(np.float32)
    y = rng.integers(0, 2 + (seed % 4 == 0), size=n)
    y[:2] = [0, 1]
    cls = [ExtraTreesClassifier, RandomForestClassifier][seed % 2]
    kwargs = {"class_weight": "balanced"} if seed % 3 == 0 else {}
    est = cls(n_estimators=int(rng.choice([2, 3, 4, 6, 7])), max_depth=int(rng.integers(1, 3)), random_state=seed, **kwargs)
    return est.fit(X, y)


def test_ties_follow_scikit_learns_float64(emltrees_x64, tmp_path):
    grid = np.arange(8, dtype=np.float32).reshape(-1, 1)
    n_tied, n_ulp_apart = 0, 0
    for seed in range(100):
        est = tie_forest(seed)
        top = np.sort(est.predict_proba(grid), axis=1)
        n_tied += int(np.sum(top[:, -1] == top[:, -2]))
        n_ulp_apart += int(np.sum((top[:, -1] - top[:, -2] < 1e-12) & (top[:, -1] != top[:, -2])))
        for dtype in ("float32", "int16"):
            stored = trees.lower(trees.forest_from_sklearn(est), dtype=dtype)
            path = tmp_path / "model.csv"
            trees_format.save(stored, path)
            pred, _ = device.predict_trees(path, grid, stored)
            np.testing.assert_array_equal(stored.classes[pred], est.predict(grid), err_msg="seed %d %s" % (seed, dtype))
            np.testing.assert_array_equal(stored.predict(grid), est.predict(grid), err_msg="seed %d %s" % (seed, dtype))
    # The generator makes exact ties and float64 sums an ulp apart (where float32 sums tie or flip).
    assert n_tied >= 20 and n_ulp_apart >= 1, (n_tied, n_ulp_apart)
