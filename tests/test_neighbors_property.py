"""Property test on random data: seeded random training sets, feature counts, k, metrics,
weights and dtypes (int16 values up to the whole int16 range). On the unix port, every
query's predict, kneighbors, score and is_outlier are bit-identical to the numpy mirror;
predict equals scikit-learn's on every query without a distance tie (see tie_free), and
kneighbors' indices equal scikit-learn's where the k+1 nearest distances are all apart."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

import mpyml
from neighbors_device import run_models, tie_free

N_MODELS = 24


def random_case(rng, n: int):
    dtype = ("int16", "float32")[n % 2]
    metric = ("euclidean", "manhattan", "chebyshev")[(n // 2) % 3]
    weights = ("uniform", "distance")[(n // 6) % 2]
    n_features = int(rng.choice([1, 2, 5, 16, 40, 110]))
    n_items = int(rng.integers(8, 200))
    k = int(rng.integers(1, min(n_items - 1, 12) + 1))
    n_classes = int(rng.integers(2, 7))
    if dtype == "int16":
        spread = int(rng.choice([50, 3000, 32767]))
        X = rng.integers(-spread - 1, spread + 1, size=(n_items + 40, n_features)).astype(float)
    else:
        X = (rng.normal(size=(n_items + 40, n_features)) * rng.choice([1e-3, 1.0, 1e4])).astype(np.float32).astype(float)
    y = rng.integers(0, n_classes, size=n_items)
    y[:n_classes] = np.arange(n_classes)  # every class present
    knn = KNeighborsClassifier(n_neighbors=k, weights=weights, metric=metric, algorithm="brute").fit(X[:n_items], y)
    return knn, X[:n_items], y, X[n_items:], dtype


def test_random_models(tmp_path):
    rng = np.random.default_rng(20261123)
    cases, fitted = [], []
    for n in range(N_MODELS):
        knn, X_train, y_train, X_test, dtype = random_case(rng, n)
        path = tmp_path / ("m%d.csv" % n)
        stored = mpyml.export(knn, path, feature_dtype=dtype, novelty_percentile=float(rng.uniform(50, 100)))
        cases.append((path, stored, X_test))
        fitted.append((knn, X_train, y_train))
    results = run_models(cases)
    compared = 0
    for (path, stored, X), (knn, X_train, y_train), out in zip(cases, fitted, results):
        what = (stored.dtype, stored.metric, stored.weights, stored.n_items, stored.n_features, stored.k)
        dist, index = stored.kneighbors(X)
        np.testing.assert_array_equal(out["pred"], stored.predict_index(X), err_msg=str(what))
        np.testing.assert_array_equal(out["index"], index, err_msg=str(what))
        np.testing.assert_array_equal(out["dist"].view(np.uint32), dist.view(np.uint32), err_msg=str(what))
        np.testing.assert_array_equal(out["score"].view(np.uint32), stored.score(X).view(np.uint32), err_msg=str(what))
        np.testing.assert_array_equal(out["outlier"], stored.is_outlier(X), err_msg=str(what))
        assert out["allocated"] == 0, what
        clear, apart = tie_free(knn, X_train, y_train, X)
        np.testing.assert_array_equal(knn.classes_[out["pred"][clear]], knn.predict(X)[clear], err_msg=str(what))
        np.testing.assert_array_equal(out["index"][apart], knn.kneighbors(X)[1][apart], err_msg=str(what))
        compared += clear.sum()
    assert compared >= 0.8 * N_MODELS * 40
