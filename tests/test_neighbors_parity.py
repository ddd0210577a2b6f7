"""emlneighbors on the unix port against scikit-learn and the numpy mirror.

On iris, wine, breast_cancer and digits, for int16 and float32 features, uniform
and distance weights, euclidean, manhattan and chebyshev: the device's predict,
kneighbors, score and is_outlier are bit-identical to StoredNeighbors' numpy
mirror on every test row, and predict equals scikit-learn's on every test row
without a distance tie. A row counts as tied (and is left out of the
scikit-learn comparison) when, in scikit-learn's float64 distances, the k-th and
(k+1)-th nearest training rows are closer than 1e-4 relative (which k rows are
nearest is then down to rounding or tie order), or, with distance weights, the
two largest class weight sums are closer than 1e-4 relative. kneighbors
indices are compared with scikit-learn's on rows whose k+1 nearest distances are
all 1e-4 apart.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

import mpyml
from neighbors_device import near_tie_scenes, run_models, tie_free

DATASETS = ("iris", "wine", "breast_cancer", "digits")
METRICS = ("euclidean", "manhattan", "chebyshev")
WEIGHTS = ("uniform", "distance")
K = 5


@lru_cache(maxsize=None)
def dataset(name: str, dtype: str):
    """Train / test split of a bundled dataset as the dtype needs it: int16 rows are each
    feature scaled to at most 1000 in magnitude and rounded (digits stay 0..16); float32
    rows are the float32 values (scikit-learn fits on the same values)."""
    from sklearn import datasets

    X, y = getattr(datasets, "load_" + name)(return_X_y=True)
    if dtype == "int16":
        if name != "digits":
            X = np.round(X * (1000.0 / np.abs(X).max(axis=0)))
    else:
        X = X.astype(np.float32).astype(np.float64)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("name", DATASETS)
def test_classifier_parity(tmp_path, name, dtype):
    X_train, X_test, y_train, y_test = dataset(name, dtype)
    cases, fitted = [], []
    for weights in WEIGHTS:
        for metric in METRICS:
            knn = KNeighborsClassifier(n_neighbors=K, weights=weights, metric=metric, algorithm="brute").fit(X_train, y_train)
            path = tmp_path / ("%s_%s.csv" % (weights, metric))
            stored = mpyml.export(knn, path, feature_dtype=dtype)
            cases.append((path, stored, X_test))
            fitted.append(knn)
    results = run_models(cases)
    for (path, stored, X), knn, out in zip(cases, fitted, results):
        what = "%s %s %s %s" % (name, dtype, knn.weights, knn.metric)
        mirror_dist, mirror_index = stored.kneighbors(X)
        mirror_pred = stored.predict_index(X)
        np.testing.assert_array_equal(out["pred"], mirror_pred, err_msg=what)
        np.testing.assert_array_equal(out["index"], mirror_index, err_msg=what)
        np.testing.assert_array_equal(out["dist"].view(np.uint32), mirror_dist.view(np.uint32), err_msg=what)
        np.testing.assert_array_equal(out["score"].view(np.uint32), stored.score(X).view(np.uint32), err_msg=what)
        np.testing.assert_array_equal(out["outlier"], stored.is_outlier(X), err_msg=what)
        assert out["allocated"] == 0, what

        clear, apart = tie_free(knn, X_train, y_train, X)
        assert clear.sum() >= 10, "%s: only %d of %d rows without ties" % (what, clear.sum(), len(X))
        sk_pred = knn.predict(X)
        # class indices on the device, labels in scikit-learn
        np.testing.assert_array_equal(knn.classes_[out["pred"][clear]], sk_pred[clear], err_msg=what)
        sk_dist, sk_index = knn.kneighbors(X)
        np.testing.assert_array_equal(out["index"][apart], sk_index[apart], err_msg=what)
        np.testing.assert_allclose(out["dist"], sk_dist, rtol=2e-6 if dtype == "int16" else 1e-4, atol=1e-6, err_msg=what)


def test_vote_ties_go_to_the_lowest_class_index_as_in_sklearn(tmp_path):
    # k=4: two votes for class 2 (nearer) and two for class 1: class 1 wins, in scikit-learn too.
    X_train = np.array([[1], [2], [3], [4], [100]], dtype=float)
    y_train = np.array([2, 2, 1, 1, 0])
    knn = KNeighborsClassifier(n_neighbors=4).fit(X_train, y_train)
    path = tmp_path / "tie.csv"
    stored = mpyml.export(knn, path, novelty_percentile=None)
    X = np.array([[0]], dtype=float)
    out = run_models([(path, stored, X)])[0]
    assert knn.predict(X)[0] == 1
    assert list(out["pred"]) == [1] == list(stored.predict(X))


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_distance_weights_zero_distance_rule_as_in_sklearn(tmp_path, dtype):
    # The query equals items 0 and 1 (classes 1 and 2): only they vote, with weight 1 each, and the
    # tie goes to class 1; without the rule the three class-0 items at distance 1 would not count at all
    # (infinite weights), and with plain 1/d weights class 0 could never win either.
    X_train = np.array([[5, 5], [5, 5], [5, 6], [6, 5], [4, 5], [50, 50]], dtype=float)
    y_train = np.array([1, 2, 0, 0, 0, 0])
    knn = KNeighborsClassifier(n_neighbors=5, weights="distance").fit(X_train, y_train)
    path = tmp_path / "zero.csv"
    stored = mpyml.export(knn, path, feature_dtype=dtype, novelty_percentile=None)
    X = np.array([[5, 5], [5, 7]], dtype=float)
    out = run_models([(path, stored, X)])[0]
    assert list(knn.predict(X)) == [1, 0]
    assert list(out["pred"]) == [1, 0] == list(stored.predict(X))


def test_nearest_neighbors_kneighbors(tmp_path):
    X_train, X_test, _, _ = dataset("wine", "float32")
    nn = NearestNeighbors(n_neighbors=4, metric="manhattan").fit(X_train)
    path = tmp_path / "nn.csv"
    stored = mpyml.export(nn, path, feature_dtype="float32", novelty_percentile=95)
    out = run_models([(path, stored, X_test)])[0]
    sk_dist, sk_index = nn.kneighbors(X_test)
    np.testing.assert_array_equal(out["index"], stored.kneighbors(X_test)[1])
    np.testing.assert_array_equal(out["index"], sk_index)
    np.testing.assert_allclose(out["dist"], sk_dist, rtol=1e-5)
    np.testing.assert_array_equal(out["outlier"], stored.is_outlier(X_test))



@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("metric", METRICS)
def test_distance_weights_near_ties_as_in_sklearn(tmp_path, dtype, metric):
    # Class totals of 1/distance that float32 cannot tell apart: the device decides them with
    # scikit-learn's float64 sums, which name the same class under every search algorithm (the
    # scenes' whole-number rows keep even the brute search's matrix products exact).
    cases, expected = [], []
    for n, (k, X_train, y_train, X) in enumerate(near_tie_scenes(dtype, metric)):
        predictions = set()
        for algorithm in ("brute", "kd_tree", "ball_tree"):
            knn = KNeighborsClassifier(n_neighbors=k, weights="distance", metric=metric, algorithm=algorithm)
            predictions.add(int(knn.fit(X_train, y_train).predict(X)[0]))
        assert len(predictions) == 1, (k, predictions)
        path = tmp_path / ("tie%d.csv" % n)
        stored = mpyml.export(knn, path, feature_dtype=dtype, novelty_percentile=None)
        cases.append((path, stored, X))
        expected.append(predictions.pop())
    results = run_models(cases)
    got = [int(out["pred"][0]) for out in results]
    mirror = [int(stored.predict_index(X)[0]) for _, stored, X in cases]
    assert got == expected == mirror
    assert 1 in expected  # the class float32 totals would lose to class 0
