"""IsolationForest in emltrees: predict (+1 / -1) equal to scikit-learn's on every row, score_samples within
1e-5 relative, decision_function within 1e-5 relative or 1e-6 absolute (it is score_samples - offset_, which
cancels near the boundary); the numpy mirror equal to the device bit for bit.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mpyml
from mpyml import device, trees, vibration
from mpyml.formats import trees as trees_format
from mpyml.demo import int16_scaled

_SCRIPT = """
import array, emltrees
m = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(m, {path!r})
X = array.array({typecode!r}, bytes({itemsize} * {n_values}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
n = len(X) // m.n_features
pred = array.array('H', bytes(2 * n))
decision = array.array('f', bytes(4 * n))
score = array.array('f', bytes(4 * n))
m.predict_many(X, pred)
m.decision_function(X, decision)
m.score_samples(X, score)
with open({out_path!r}, 'wb') as f:
    f.write(pred)
    f.write(decision)
    f.write(score)
"""


def run_device(stored, path, X, tmp_path):
    X = stored.cast_features(X)
    x_path, out_path = tmp_path / "x.bin", tmp_path / "out.bin"
    x_path.write_bytes(np.ascontiguousarray(X).astype(X.dtype.newbyteorder("<")).tobytes())
    device.run(_SCRIPT.format(n_trees=stored.n_trees, n_nodes=stored.n_nodes, n_leaves=stored.n_leaves, path=str(path),
                              typecode="h" if stored.dtype == "int16" else "f", itemsize=X.itemsize, n_values=X.size,
                              x_path=str(x_path), out_path=str(out_path)))
    raw = out_path.read_bytes()
    n = len(X)
    pred = np.frombuffer(raw[:2 * n], dtype="<u2").astype(np.int64)
    decision = np.frombuffer(raw[2 * n:6 * n], dtype="<f4")
    score = np.frombuffer(raw[6 * n:], dtype="<f4")
    return pred, decision, score


def vibration_data(return_X_y=True):
    return vibration.condition_monitoring(n_per_class=60)


DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits, "vibration": vibration_data}
MODELS = {
    "default": lambda: IsolationForest(n_estimators=40, random_state=0),
    "contamination 0.1, max_features 0.5": lambda: IsolationForest(
        n_estimators=30, contamination=0.1, max_features=0.5, random_state=1),
    "bootstrap_features-like: max_samples 64, max_features 3": lambda: IsolationForest(
        n_estimators=25, max_samples=64, max_features=3, random_state=2),
}


@pytest.fixture(scope="module")
def counts():
    seen = []
    yield seen
    print("\nIsolationForest: %d rows with the device's sign equal to scikit-learn's predict" % sum(seen))


def check(model, stored, X, tmp_path, counts, X_library=None):
    path = tmp_path / "iforest.csv"
    trees_format.save(stored, path)
    pred, decision, score = run_device(stored, path, X, tmp_path)
    X_library = np.asarray(X, dtype=np.float64) if X_library is None else X_library
    np.testing.assert_array_equal(stored.classes[pred], model.predict(X_library))
    np.testing.assert_array_equal(pred, stored.predict_index(X))
    np.testing.assert_array_equal(decision.view(np.uint32), stored.decision_function(X)[:, 0].view(np.uint32))
    np.testing.assert_array_equal(score.view(np.uint32), stored.score_samples(X).view(np.uint32))
    np.testing.assert_allclose(score, model.score_samples(X_library), rtol=1e-5)
    np.testing.assert_allclose(decision, model.decision_function(X_library), rtol=1e-5, atol=1e-6)
    counts.append(len(X))


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("name", list(MODELS))
def test_isolation_forest_parity(emltrees_x64, tmp_path, counts, name, dataset, dtype):
    X, _ = DATASETS[dataset](return_X_y=True)
    if dtype == "int16":
        X = int16_scaled(X, X)[0]
    else:
        X = X.astype(np.float32)
    model = MODELS[name]().fit(X)
    stored = trees.lower(mpyml.convert(model), dtype=dtype)
    rng = np.random.default_rng(0)
    rows = [X]
    # Rows on and next to thresholds.
    nodes = rng.choice(stored.n_nodes, min(stored.n_nodes, 300), replace=False)
    near = X[rng.integers(0, len(X), 3 * len(nodes))].copy()
    for i, n in enumerate(nodes):
        t = stored.threshold[n]
        for j, v in enumerate([t, t - 1, t + 1] if dtype == "int16" else
                              [t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))]):
            if dtype == "int16":
                v = min(max(v, -32768), 32767)
            near[3 * i + j, stored.feature[n]] = v
    rows.append(near)
    if dtype == "float32":
        with_nan = X[:100].copy()
        with_nan[rng.random(with_nan.shape) < 0.2] = np.nan
        rows.append(with_nan)
    check(model, stored, np.concatenate(rows), tmp_path, counts)


def test_rows_on_the_boundary(emltrees_x64, tmp_path, counts):
    """offset_ set to rows' own scores: their decision is exactly 0 (inlier, scikit-learn's `< 0` is false),
    and with offset_ one double above, just below 0 (outlier). The float32 sums cannot tell these apart;
    the device decides with scikit-learn's float64 sums."""
    X, _ = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    model = IsolationForest(n_estimators=20, random_state=0).fit(X)
    scores = model.score_samples(X)
    for i in (0, 5, 17):
        for offset in (scores[i], np.nextafter(scores[i], 1.0), np.nextafter(scores[i], -1.0)):
            model.offset_ = offset
            stored = trees.lower(mpyml.convert(model), dtype="float32")
            check(model, stored, X[[i]], tmp_path, counts)
            assert stored.predict(X[[i]])[0] == (1 if offset <= scores[i] else -1)


def test_pipeline_and_export(emltrees_x64, tmp_path):
    X, _ = vibration.condition_monitoring(n_per_class=40)
    pipe = make_pipeline(StandardScaler(), IsolationForest(n_estimators=20, random_state=0)).fit(X[:40])
    stored = mpyml.export(pipe, tmp_path / "p.csv", input_dtype="float32")
    pred, _, _ = run_device(stored, tmp_path / "p.csv", X, tmp_path)
    np.testing.assert_array_equal(stored.classes[pred], pipe.predict(X))
    assert (pipe.predict(X[40:]) == -1).mean() > 0.5  # the faults are flagged


def test_refuses_predict_proba(emltrees_x64, tmp_path):
    X, _ = load_wine(return_X_y=True)
    stored = mpyml.export(IsolationForest(n_estimators=3, random_state=0).fit(X), tmp_path / "m.csv",
                          feature_dtype="float32")
    out = device.run("import emltrees, array\nm = emltrees.new(3, 1000, 1000)\nemltrees.load_model(m, %r)\n"
                     "try:\n    m.predict_proba(array.array('f', [0.0] * 13), array.array('f', [0.0, 0.0]))\n"
                     "except TypeError as e:\n    print(e)\n" % str(tmp_path / "m.csv"))
    assert "score_samples and decision_function" in out
    with pytest.raises(TypeError):
        stored.predict_proba(X)
