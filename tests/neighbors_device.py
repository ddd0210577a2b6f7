"""Runs emlneighbors models on the unix port for the tests: every row of X through predict,
kneighbors, score and is_outlier in one micropython process per batch of models."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mpyml import build, device

_SCRIPT = """
import array, emlneighbors, gc
jobs = {jobs!r}
for model_path, x_path, out_path, n_rows, n_features, k, typecode, max_items, labeled, has_threshold in jobs:
    model = emlneighbors.new(max_items, n_features, k)
    emlneighbors.load_model(model, model_path)
    X = array.array(typecode, bytes(n_rows * n_features * (2 if typecode == 'h' else 4)))
    with open(x_path, 'rb') as f:
        f.readinto(X)
    pred = array.array('H', bytes(2 * n_rows))
    dist = array.array('f', bytes(4 * n_rows * k))
    index = array.array('I', bytes(4 * n_rows * k))
    score = array.array('f', bytes(4 * n_rows))
    outlier = array.array('B', bytes(n_rows))
    d = array.array('f', bytes(4 * k))
    i = array.array('I', bytes(4 * k))
    rows = [X[r * n_features:(r + 1) * n_features] for r in range(n_rows)]
    gc.collect()
    before = gc.mem_alloc()
    for x in rows:
        if labeled:
            model.predict(x)
        model.kneighbors(x, d, i)
        if has_threshold:
            model.is_outlier(x)
    allocated = gc.mem_alloc() - before
    for r in range(n_rows):
        x = rows[r]
        if labeled:
            pred[r] = model.predict(x)
        model.kneighbors(x, d, i)
        dist[r * k:(r + 1) * k] = d
        index[r * k:(r + 1) * k] = i
        if has_threshold:
            outlier[r] = model.is_outlier(x)
    for r in range(n_rows):
        score[r] = model.score(rows[r])
    with open(out_path, 'wb') as f:
        f.write(pred)
        f.write(dist)
        f.write(index)
        f.write(score)
        f.write(outlier)
    print(allocated)
"""


def run_models(cases):
    """cases: [(model_path, stored, X)]. Returns per case a dict of device outputs
    (pred, dist, index, score, outlier) and the heap bytes allocated by the per-row calls."""
    build.build("emlneighbors", "x64")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for n, (model_path, stored, X) in enumerate(cases):
            X = stored.cast_features(X)
            x_path, out_path = Path(tmp) / ("x%d.bin" % n), Path(tmp) / ("out%d.bin" % n)
            dtype = "<i2" if stored.dtype == "int16" else "<f4"
            x_path.write_bytes(np.ascontiguousarray(X).astype(dtype).tobytes())
            jobs.append((str(Path(model_path).resolve()), str(x_path), str(out_path), len(X), stored.n_features,
                         stored.k, "h" if stored.dtype == "int16" else "f", stored.n_items,
                         stored.labels is not None, stored.threshold is not None))
        allocated = device.run(_SCRIPT.format(jobs=jobs)).split()
        for n, (_, stored, X) in enumerate(cases):
            raw = (Path(tmp) / ("out%d.bin" % n)).read_bytes()
            n_rows, k = len(X), stored.k
            sizes = [("pred", "<u2", n_rows), ("dist", "<f4", n_rows * k), ("index", "<u4", n_rows * k),
                     ("score", "<f4", n_rows), ("outlier", "u1", n_rows)]
            out, offset = {}, 0
            for name, dtype, count in sizes:
                item = np.dtype(dtype).itemsize
                out[name] = np.frombuffer(raw[offset:offset + item * count], dtype=dtype)
                offset += item * count
            out["dist"] = out["dist"].reshape(n_rows, k)
            out["index"] = out["index"].reshape(n_rows, k).astype(np.int64)
            out["pred"] = out["pred"].astype(np.int64)
            out["outlier"] = out["outlier"].astype(bool)
            out["allocated"] = int(allocated[n])
            results.append(out)
    return results


GAP = 1e-4
SCIPY_METRIC = {"euclidean": "euclidean", "manhattan": "cityblock", "chebyshev": "chebyshev"}


def tie_free(knn, X_train, y_train, X_test) -> tuple[np.ndarray, np.ndarray]:
    """Rows of X_test (clear, apart) by scikit-learn-precision float64 distances: clear when the
    k-th and (k+1)-th nearest training rows are more than GAP (relative) apart and, with distance
    weights, the two largest class weight sums are too; apart when the k+1 nearest are all apart."""
    from scipy.spatial.distance import cdist

    k = knn.n_neighbors
    d = cdist(X_test, X_train, SCIPY_METRIC[knn.metric])
    order = np.argsort(d, axis=1, kind="stable")
    ds = np.take_along_axis(d, order, axis=1)[:, : k + 1]
    if ds.shape[1] == k:  # every item is a neighbour: the set is always clear
        ds = np.concatenate([ds, np.full((len(ds), 1), np.inf)], axis=1)
    scale = np.where(np.isinf(ds[:, k]), ds[:, k - 1], ds[:, k])
    scale = np.maximum(scale, 1e-300)
    clear = ds[:, k] - ds[:, k - 1] > GAP * scale
    if getattr(knn, "weights", "uniform") == "distance":
        labels = knn._y[order[:, :k]]
        with np.errstate(divide="ignore"):
            w = 1.0 / ds[:, :k]
        zero = np.isinf(w)
        w = np.where(zero.any(axis=1, keepdims=True), zero.astype(float), w)
        sums = np.zeros((len(X_test), len(knn.classes_)))
        for j in range(k):
            np.add.at(sums, (np.arange(len(X_test)), labels[:, j]), w[:, j])
        top2 = np.sort(sums, axis=1)[:, -2:] if sums.shape[1] > 1 else np.concatenate([np.zeros((len(sums), 1)), sums], axis=1)
        clear &= top2[:, 1] - top2[:, 0] > GAP * top2[:, 1]
    apart = np.all(np.diff(ds, axis=1) > GAP * scale[:, None], axis=1)
    return clear, apart


def near_tie_scenes(dtype: str, metric: str):
    """(k, X_train, y_train, query) whose class totals of 1/distance tie in float32 but not in
    scikit-learn's float64, the query at the origin. "pairs": class 1 has neighbours at c - 1
    and c + 1 (1/(c-1) + 1/(c+1) exceeds 2/c by 2/c**3, below float32's resolution), class 0 two
    at c, an odd k's last neighbour is class 2 at 2c; "near/far": class 1 at distance c, class 0
    just farther (euclidean: (c, 1), squared distance c**2 + 1, a float32 sum of c**2; float32
    manhattan: (c, 1e-4), whose float32 sum is c). Far items (class 0) fill the training set up
    to 2k + 4 rows."""
    c = 10000.0
    scenes = []
    for k in (4, 5, 8, 9, 12, 17, 26):
        j, r = divmod(k, 4)
        rows = [[c - 1, 0]] * j + [[c, 0]] * (2 * j) + [[c + 1, 0]] * j + [[2 * c, 0]] * r
        y = [1] * j + [0] * (2 * j) + [1] * j + [2] * r
        scenes.append((k, rows, y))
    if metric == "euclidean" or metric == "manhattan" and dtype == "float32":
        far = 1.0 if metric == "euclidean" else 1e-4
        for k in (2, 3, 4, 6, 10, 16):
            p = k // 2
            rows = [[c, 0]] * p + [[0, c]] * (k - 2 * p) + [[c, far]] * p
            y = [1] * p + [2] * (k - 2 * p) + [0] * p
            if k % 2:
                rows[p] = [0, 2 * c]
            scenes.append((k, rows, y))
    out = []
    for k, rows, y in scenes:
        filler = [[-3 * c, -3 * c + i] for i in range(k + 4)]
        X_train = np.array(rows + filler, dtype=float)
        y_train = np.array(y + [0] * len(filler))
        out.append((k, X_train, y_train, np.zeros((1, 2))))
    return out
