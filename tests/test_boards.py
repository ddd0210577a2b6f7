"""Every module on emulated microcontrollers: MicroPython 1.27 firmware under qemu (mpyml.boards).

Each workload runs once on the unix port (x64) and once per board. Its outputs are raw
float32/int bytes (hex), so "identical" means bit for bit, whatever the port's Python float
width (the unix port and MPS2_AN500 box doubles, the other boards float32). Each output is also
checked against scikit-learn/scipy/numpy/Keras/XGBoost/LightGBM. Each script reports the heap the
module's import took (native code lives in the heap on a board) and the heap its predict/run calls
allocate (zero).
Select with `-m boards`.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from scipy import signal
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier,
                              IsolationForest, RandomForestClassifier)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import board_report
import mpyml
from mpyml import boards, build, iir
from mpyml.formats import mixture as mixture_format
from mpyml.demo import int16_scaled
from test_parity import split

pytestmark = pytest.mark.boards
BOARDS = list(boards.BOARDS)

# Runs first in every workload script: helpers and the module's import, measured.
PRELUDE = """
import gc, array, time, binascii
def load(name, typecode):
    with open(name, 'rb') as f:
        data = f.read()
    return array.array(typecode, data)
def zeros(typecode, n):
    return array.array(typecode, bytes(n * (4 if typecode == 'f' else 2)))
def out(label, arr):
    print('OUT', label, binascii.hexlify(arr).decode())
def measure(label, call, n=50):
    call()
    gc.collect()
    before = gc.mem_alloc()
    t = time.ticks_us()
    for _ in range(n):
        call()
    t = time.ticks_diff(time.ticks_us(), t)
    print('ALLOC', label, gc.mem_alloc() - before)
    print('US', label, t // n)
gc.collect()
_before = gc.mem_alloc()
import MODULE
gc.collect()
print('RAM', gc.mem_alloc() - _before)
"""


def parse(text: str) -> dict:
    """{'RAM': n, 'ALLOC': {label: n}, 'US': {label: n}, 'OUT': {label: bytes}} from a workload's output."""
    result = {"ALLOC": {}, "US": {}, "OUT": {}}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "RAM":
            result["RAM"] = int(parts[1])
        elif parts and parts[0] in ("ALLOC", "US"):
            result[parts[0]][parts[1]] = int(parts[2])
        elif parts and parts[0] == "OUT":
            result["OUT"][parts[1]] = bytes.fromhex(parts[2]) if len(parts) > 2 else b""
    return result


def f32(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")


# ---------------------------------------------------------------- workloads
# Each returns (module, script, files, check): check(outputs) compares with the library.


def trees_int16(tmp):
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    Xtr, Xte = int16_scaled(Xtr, Xte)
    Xte = Xte[:40]
    rf = RandomForestClassifier(n_estimators=5, max_depth=7, random_state=0).fit(Xtr, ytr)
    stored = mpyml.export(rf, tmp / "rf.csv", feature_dtype="int16")
    script = f"""
m = emltrees.new({stored.n_trees}, {stored.n_nodes}, {stored.n_leaves})
emltrees.load_model(m, 'rf.csv')
X = load('x.bin', 'h')
pred = zeros('H', {len(Xte)})
proba = zeros('f', {len(Xte) * stored.n_classes})
x = X[:{Xte.shape[1]}]
measure('predict', lambda: m.predict(x))
measure('predict_proba_many', lambda: m.predict_proba_many(X, proba))
m.predict_many(X, pred)
out('pred', pred)
out('proba', proba)
"""

    def check(o):
        assert np.array_equal(np.frombuffer(o["pred"], "<u2"), rf.predict(Xte))
        assert np.abs(f32(o["proba"]).reshape(len(Xte), -1) - rf.predict_proba(Xte)).max() <= 1e-6
    return "emltrees", script, {"rf.csv": tmp / "rf.csv", "x.bin": Xte.astype("<i2").tobytes()}, check


def trees_float32_pipeline(tmp):
    X, y = load_wine(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=0)
    pipe = make_pipeline(StandardScaler(), PCA(5), RandomForestClassifier(n_estimators=5, random_state=0)).fit(Xtr, ytr)
    stored = mpyml.export(pipe, tmp / "pipe.csv", feature_dtype="float32")
    model = stored.model
    script = f"""
m = emltrees.new({model.n_trees}, {model.n_nodes}, {model.n_leaves})
emltrees.load_model(m, 'pipe.csv')
X = load('x.bin', 'f')
pred = zeros('H', {len(Xte)})
x = X[:{Xte.shape[1]}]
measure('predict', lambda: m.predict(x))
measure('predict_many', lambda: m.predict_many(X, pred))
out('pred', pred)
"""

    def check(o):
        agree = np.frombuffer(o["pred"], "<u2") == pipe.predict(Xte)
        assert agree.mean() >= 0.98, agree  # float32 steps on the device, float64 in scikit-learn
    return "emltrees", script, {"pipe.csv": tmp / "pipe.csv", "x.bin": Xte.astype("<f4").tobytes()}, check


def _signal(n=400):
    t = np.arange(n)
    return (np.sin(0.05 * t) + 0.5 * np.sin(0.7 * t) + 0.1 * np.random.default_rng(3).standard_normal(n)).astype(np.float32)


def iir_float32_q15(tmp):
    sos = signal.butter(4, [0.1, 0.3], btype="bandpass", output="sos")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", iir.Q15Warning)
        q15 = iir.quantize_q15(signal.butter(2, 0.2, output="sos"))
    iir.save(sos, tmp / "f.iir")
    iir.save(q15, tmp / "q.iir")
    x = _signal()
    xi = np.round(x.astype(np.float64) * 8000).astype(np.int16)
    script = """
f = emliir.load('f.iir')
q = emliir.load('q.iir')
x = load('x.bin', 'f')
xi = load('xi.bin', 'h')
f.run(x)
q.run(xi)
out('float32', x)
out('q15', xi)
f.reset()
q.reset()
y = zeros('f', 64)
yi = zeros('h', 64)
measure('run_f32_64', lambda: f.run(y))
measure('run_q15_64', lambda: q.run(yi))
"""

    def check(o):
        got = f32(o["float32"])
        np.testing.assert_array_equal(got.view(np.uint32), iir.sosfilt_float32(sos, x)[0].view(np.uint32))
        assert np.abs(got - signal.sosfilt(sos, x.astype(np.float64))).max() < 1e-4
        np.testing.assert_array_equal(np.frombuffer(o["q15"], "<i2"), iir.sosfilt_q15(q15, xi)[0])
    files = {"f.iir": tmp / "f.iir", "q.iir": tmp / "q.iir", "x.bin": x.astype("<f4").tobytes(),
             "xi.bin": xi.astype("<i2").tobytes()}
    return "emliir", script, files, check


def fft(tmp):
    rng = np.random.default_rng(5)
    re_, im_ = rng.standard_normal((2, 256)).astype(np.float32)
    script = """
f = emlfft.FFT(256)
re = load('re.bin', 'f')
im = load('im.bin', 'f')
f.run(re, im)
out('re', re)
out('im', im)
measure('run_256', lambda: f.run(re, im))
"""

    def check(o):
        expected = np.fft.fft(re_.astype(np.float64) + 1j * im_.astype(np.float64))
        got = f32(o["re"]).astype(np.float64) + 1j * f32(o["im"])
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    return "emlfft", script, {"re.bin": re_.tobytes(), "im.bin": im_.tobytes()}, check


def knn(tmp):
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=1)
    base, extra, y_base, y_extra = Xtr[:80], Xtr[80:], ytr[:80], ytr[80:]
    knn_ = KNeighborsClassifier(3).fit(base, y_base)
    mpyml.export(knn_, tmp / "knn.csv", feature_dtype="float32", novelty_percentile=None)
    script = f"""
m = emlneighbors.new({len(Xtr)}, 4, 3)
emlneighbors.load_model(m, 'knn.csv')
X = load('x.bin', 'f')
E = load('extra.bin', 'f')
labels = {[int(v) for v in y_extra]!r}
pred = zeros('H', {len(Xte)})
def predict_all(model, out_):
    for r in range({len(Xte)}):
        out_[r] = model.predict(X[4 * r:4 * r + 4])
predict_all(m, pred)
out('before', pred)
for r in range(len(labels)):
    m.additem(E[4 * r:4 * r + 4], labels[r])
predict_all(m, pred)
out('added', pred)
emlneighbors.save_model(m, 'saved.csv')
m2 = emlneighbors.new({len(Xtr)}, 4, 3)
emlneighbors.load_model(m2, 'saved.csv')
predict_all(m2, pred)
out('reloaded', pred)
x = X[0:4]
d = zeros('f', 3)
i = zeros('H', 3)
measure('predict', lambda: m.predict(x))
measure('kneighbors', lambda: m.kneighbors(x, d, i))
"""

    def check(o):
        assert np.array_equal(np.frombuffer(o["before"], "<u2"), knn_.predict(Xte))
        full = KNeighborsClassifier(3).fit(Xtr, ytr)
        agree = np.frombuffer(o["added"], "<u2") == full.predict(Xte)
        assert agree.mean() >= 0.97  # float32 distances: a tie may break the other way
        assert o["reloaded"] == o["added"]
    files = {"knn.csv": tmp / "knn.csv", "x.bin": Xte.tobytes(), "extra.bin": extra.tobytes()}
    return "emlneighbors", script, files, check


def linear(tmp):
    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, ytr)
    mpyml.export(pipe, tmp / "linear.csv")
    script = f"""
m = emllinear.new(8, 1000)
emllinear.load_model(m, 'linear.csv')
X = load('x.bin', 'f')
proba = zeros('f', m.n_outputs)
allp = zeros('f', {len(Xte)} * m.n_outputs)
for r in range({len(Xte)}):
    m.predict_proba(X[4 * r:4 * r + 4], proba)
    allp[r * m.n_outputs:(r + 1) * m.n_outputs] = proba
out('proba', allp)
x = X[0:4]
measure('predict', lambda: m.predict(x))
measure('predict_proba', lambda: m.predict_proba(x, proba))
"""

    def check(o):
        assert np.abs(f32(o["proba"]).reshape(len(Xte), -1) - pipe.predict_proba(Xte)).max() <= 1e-5
    return "emllinear", script, {"linear.csv": tmp / "linear.csv", "x.bin": Xte.tobytes()}, check


def _net_inputs():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def _cnn(tmp, quantize):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the lightest Keras 3 backend (the nets extra)
    keras = pytest.importorskip("keras")
    Xtr, Xte, ytr, _ = _net_inputs()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(8, 4, activation="relu"),
                              # Flatten of 1x1 only: the device refused Dense after a larger Flatten (found here)
                              keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    Xte = Xte[:20]
    name = "cnn_%s.bin" % (quantize or "f32")
    stored = mpyml.export(model, tmp / name, quantize=quantize, representative_data=Xtr[:100].reshape(-1, 8, 8, 1))
    script = f"""
net = emlcnn.new(emlcnn.arena_bytes({name!r}))
emlcnn.load_model(net, {name!r})
X = load('x.bin', 'f')
y = zeros('f', net.n_outputs)
ys = zeros('f', {len(Xte)} * net.n_outputs)
for r in range({len(Xte)}):
    net.predict(X[64 * r:64 * r + 64], y)
    ys[10 * r:10 * r + 10] = y
out('outputs', ys)
x = X[0:64]
measure('predict', lambda: net.predict(x, y))
"""

    def check(o):
        got = f32(o["outputs"]).reshape(len(Xte), 10)
        mirror = stored.outputs(Xte.reshape(-1, 8, 8, 1)).reshape(len(Xte), 10)
        if quantize:
            np.testing.assert_array_equal(got.view(np.uint32), mirror.view(np.uint32))
        else:
            expected = model.predict(Xte.reshape(-1, 8, 8, 1), verbose=0)
            assert np.abs(got - expected).max() < 1e-5
    return "emlcnn", script, {name: tmp / name, "x.bin": Xte.tobytes()}, check


def cnn_float32(tmp):
    return _cnn(tmp, None)


def cnn_int8(tmp):
    return _cnn(tmp, "int8")


# Boosted models and IsolationForest in emltrees: several small models per script, each freed
# (del, gc.collect) before the next loads, so that the live heap holds one model at a time (the
# boards' heap is 140 KB, emltrees' code 34-45 KB of it).

PROBA_RTOL, PROBA_ATOL = 1e-5, 1e-7  # tests/test_boosting.py's tolerances against the library
VALUE_RTOL, VALUE_ATOL = 1e-5, 1e-6


def _forest_script(tag, stored, n_rows):
    """Loads `tag`.csv into emltrees, prints its outputs over the rows of `tag`.bin, measures a
    predict call and a many-rows call, frees the model."""
    isolation = stored.boost is not None and stored.boost.link == "isolation"
    classifier = stored.kind == "classifier"
    script = f"""
m = emltrees.new({stored.n_trees}, {stored.n_nodes}, {stored.n_leaves})
emltrees.load_model(m, '{tag}.csv')
X = load('{tag}.bin', '{"h" if stored.dtype == "int16" else "f"}')
x = X[:{stored.n_features}]
pred = zeros('{"H" if classifier else "f"}', {n_rows})
m.predict_many(X, pred)
out('{tag}.pred', pred)
measure('{tag}.predict_many', lambda: m.predict_many(X, pred), 10)
"""
    if classifier:  # a regressor's predict returns a new float object: its allocation-free call is predict_many
        script += f"measure('{tag}.predict', lambda: m.predict(x))\n"
        groups = stored.boost.n_groups
        script += f"""
decision = zeros('f', {n_rows * groups})
m.decision_function(X, decision)
out('{tag}.decision', decision)
"""
        second = ("score_samples", 1) if isolation else ("predict_proba_many", stored.n_classes)
        script += f"""
second = zeros('f', {n_rows * second[1]})
m.{second[0]}(X, second)
out('{tag}.{second[0]}', second)
measure('{tag}.{second[0]}', lambda: m.{second[0]}(X, second), 10)
"""
    return script + "del m, X, x, pred\ngc.collect()\n"


def _forest_check(o, tag, model, stored, X):
    """The device's outputs against the library (classes exactly) and the numpy mirror (bits)."""
    X64 = np.asarray(X, dtype=np.float64)
    pred = o[tag + ".pred"]
    if stored.kind == "regressor":
        np.testing.assert_allclose(f32(pred), model.predict(X64), rtol=VALUE_RTOL, atol=VALUE_ATOL)
        np.testing.assert_array_equal(f32(pred), stored.predict_index(X).astype(np.float32))
        return
    index = np.frombuffer(pred, "<u2")
    np.testing.assert_array_equal(stored.classes[index], model.predict(X64))
    np.testing.assert_array_equal(index, stored.predict_index(X))
    decision = f32(o[tag + ".decision"]).reshape(len(X), -1)
    np.testing.assert_array_equal(decision.view(np.uint32), stored.decision_function(X).astype(np.float32).view(np.uint32))
    if stored.boost.link == "isolation":
        score = f32(o[tag + ".score_samples"])
        np.testing.assert_array_equal(score.view(np.uint32), stored.score_samples(X).astype(np.float32).view(np.uint32))
        np.testing.assert_allclose(decision[:, 0], model.decision_function(X64), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(score, model.score_samples(X64), rtol=1e-5)
    else:
        proba = f32(o[tag + ".predict_proba_many"]).reshape(len(X), -1)
        np.testing.assert_array_equal(proba.view(np.uint32), stored.predict_proba(X).astype(np.float32).view(np.uint32))
        np.testing.assert_allclose(proba, model.predict_proba(X64), rtol=PROBA_RTOL, atol=PROBA_ATOL)


def _edge_rows(stored, X, nan, n_nodes=4, seed=0):
    """Rows of X with one feature on a stored threshold and on its two neighbours (float32 next
    values, int16 +-1) for `n_nodes` random nodes; with `nan`, 6 rows with NaN features too."""
    rng = np.random.default_rng(seed)
    rows = X[rng.integers(0, len(X), 3 * n_nodes)].copy()
    for i, node in enumerate(rng.choice(stored.n_nodes, n_nodes, replace=False)):
        t = stored.threshold[node]
        if stored.dtype == "float32":
            values = [t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))]
        else:
            values = [t, max(t - 1, -32768), min(t + 1, 32767)]
        rows[3 * i:3 * i + 3, stored.feature[node]] = values
    if nan:
        missing = X[:6].copy()
        missing[rng.random(missing.shape) < 0.15] = np.nan
        rows = np.concatenate([rows, missing])
    return rows


def _forests(tmp, models):
    """models: [(tag, fitted model, feature dtype, test rows)] -> (module, script, files, check).
    The rows get threshold rows appended, and NaN rows where the library takes NaN."""
    script, files, stored_models = "", {}, []
    for tag, model, dtype, X in models:
        stored = mpyml.export(model, tmp / (tag + ".csv"), feature_dtype=dtype)
        X = stored.cast_features(X)
        nan = dtype == "float32" and not isinstance(model, (GradientBoostingClassifier, GradientBoostingRegressor))
        X = np.concatenate([X, _edge_rows(stored, X, nan)])
        files[tag + ".csv"] = tmp / (tag + ".csv")
        files[tag + ".bin"] = np.ascontiguousarray(X).astype(X.dtype.newbyteorder("<")).tobytes()
        script += _forest_script(tag, stored, len(X))
        stored_models.append((tag, model, stored, X))

    def check(o):
        for tag, model, stored, X in stored_models:
            _forest_check(o, tag, model, stored, X)
    return "emltrees", script, files, check


def _split(load, dtype, n_test=28):
    X_train, X_test, y_train = split(load, dtype)
    return X_train, X_test[:n_test], y_train


def boosting(tmp):
    wine, cancer, diabetes = _split(load_wine, "float32"), _split(load_breast_cancer, "int16"), _split(load_diabetes, "float32")
    hgb = HistGradientBoostingClassifier(max_iter=12, max_leaf_nodes=15, random_state=0).fit(wine[0], wine[2])
    gbc = GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=0).fit(cancer[0], cancer[2])
    gbr = GradientBoostingRegressor(n_estimators=12, max_depth=3, random_state=0).fit(diabetes[0], diabetes[2])
    return _forests(tmp, [("hgb", hgb, "float32", wine[1]), ("gbc", gbc, "int16", cancer[1]),
                          ("gbr", gbr, "float32", diabetes[1])])


def boosting_xgboost_lightgbm(tmp):
    xgboost = pytest.importorskip("xgboost")  # the boosting extra
    lightgbm = pytest.importorskip("lightgbm")
    iris, cancer, diabetes = _split(load_iris, "float32"), _split(load_breast_cancer, "float32"), _split(load_diabetes, "float32")
    xgb = xgboost.XGBClassifier(n_estimators=12, max_depth=3, random_state=0).fit(iris[0], iris[2])
    xgr = xgboost.XGBRegressor(n_estimators=12, max_depth=3, random_state=0).fit(diabetes[0], diabetes[2])
    lgb = lightgbm.LGBMClassifier(n_estimators=12, num_leaves=15, min_child_samples=5, verbose=-1).fit(cancer[0], cancer[2])
    lgr = lightgbm.LGBMRegressor(n_estimators=12, num_leaves=15, verbose=-1).fit(diabetes[0], diabetes[2])
    return _forests(tmp, [("xgb", xgb, "float32", iris[1]), ("xgr", xgr, "float32", diabetes[1]),
                          ("lgb", lgb, "float32", cancer[1]), ("lgr", lgr, "float32", diabetes[1])])


def isolation_forest(tmp):
    cancer, wine = _split(load_breast_cancer, "float32"), _split(load_wine, "int16")
    iso = IsolationForest(n_estimators=20, max_samples=64, random_state=0).fit(cancer[0])
    iso16 = IsolationForest(n_estimators=20, contamination=0.1, max_features=0.5, random_state=1).fit(wine[0])
    with warnings.catch_warnings():
        # Random thresholds are not half-integers, hence the warning; the rows here are integers already.
        warnings.simplefilter("ignore", mpyml.PrecisionWarning)
        return _forests(tmp, [("iso", iso, "float32", cancer[1]), ("iso16", iso16, "int16", wine[1])])


# emlmixture: the mixtures, GaussianNB and EllipticEnvelope (one model at a time), k-means with
# on-device learning.

_MIXTURE_SCRIPT = """
m = emlmixture.new({d}, {k})
emlmixture.load_model(m, '{tag}.txt')
X = load('x_{d}.bin', 'f')
x = X[:{d}]
pred = zeros('h', {n})
for r in range({n}):
    pred[r] = m.predict(X[{d} * r:{d} * r + {d}])
out('{tag}.predict', pred)
measure('{tag}.predict', lambda: m.predict(x))
"""


def _mixture_methods(tag, stored, n, methods):
    script = ""
    for name, width in methods:
        script += f"""
values = zeros('f', {n * width})
m.{name}(X, values)
out('{tag}.{name}', values)
measure('{tag}.{name}', lambda: m.{name}(X, values), 10)
"""
    if stored.kind == "envelope" or stored.threshold is not None:
        script += f"""
outlier = zeros('h', {n})
for r in range({n}):
    outlier[r] = m.is_outlier(X[{stored.n_features} * r:{stored.n_features} * r + {stored.n_features}])
out('{tag}.is_outlier', outlier)
"""
    return script + "del m, X, x\ngc.collect()\n"


def f64(X):
    return np.asarray(X, dtype=np.float32).astype(np.float64)


def mixture_models(tmp):
    X, y = load_wine(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=0)
    Xte = Xte[:40]
    iris = load_iris().data.astype(np.float32)
    iris_te = iris[::4][:36]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = make_pipeline(StandardScaler(), PCA(4), GaussianMixture(3, covariance_type="full", random_state=0)).fit(f64(Xtr))
        bgm = BayesianGaussianMixture(n_components=3, covariance_type="diag", random_state=0, max_iter=300).fit(f64(iris))
        tied = GaussianMixture(3, covariance_type="tied", random_state=0).fit(f64(iris))
        spherical = GaussianMixture(3, covariance_type="spherical", random_state=0).fit(f64(iris))
    nb = GaussianNB().fit(f64(Xtr), ytr)
    envelope = make_pipeline(StandardScaler(), PCA(4), EllipticEnvelope(contamination=0.05, random_state=0)).fit(f64(Xtr))
    cases = [("gmm", gmm, Xte, [("score_samples", 1), ("predict_proba", 3)], {"X": Xtr, "outlier_percentile": 2.0}),
             ("bgm", bgm, iris_te, [("score_samples", 1), ("predict_proba", 3)], {}),
             ("tied", tied, iris_te, [("score_samples", 1), ("predict_proba", 3)], {}),
             ("spherical", spherical, iris_te, [("score_samples", 1), ("predict_proba", 3)], {}),
             ("nb", nb, Xte, [("predict_proba", 3)], {}),
             ("envelope", envelope, Xte, [("mahalanobis", 1), ("decision_function", 1), ("score_samples", 1)], {})]
    script, files, stored_models = "", {"x_13.bin": Xte.tobytes(), "x_4.bin": iris_te.tobytes()}, {}
    for tag, model, rows, methods, options in cases:
        stored = mpyml.export(model, tmp / (tag + ".txt"), **options)
        files[tag + ".txt"] = tmp / (tag + ".txt")
        script += _MIXTURE_SCRIPT.format(tag=tag, d=stored.n_features, k=stored.n_components, n=len(rows))
        script += _mixture_methods(tag, stored, len(rows), methods)
        stored_models[tag] = stored

    def check(o):
        for tag, model, rows, methods, _ in cases:
            stored, n = stored_models[tag], len(rows)
            pred = np.frombuffer(o[tag + ".predict"], "<i2")
            np.testing.assert_array_equal(pred, stored.predict(rows))
            for name, _ in methods:  # the numpy mirror, bit for bit
                got = f32(o[tag + "." + name]).reshape(n, -1)
                np.testing.assert_array_equal(got.squeeze(1) if got.shape[1] == 1 else got,
                                              np.asarray(getattr(stored, name)(rows), dtype=np.float32))
            if tag + ".is_outlier" in o:
                np.testing.assert_array_equal(np.frombuffer(o[tag + ".is_outlier"], "<i2").astype(bool), stored.is_outlier(rows))
        # against scikit-learn, with tests/test_mixture*.py's tolerances
        for tag, model, rows, _, _ in cases[:4]:  # the mixtures
            proba = model.predict_proba(f64(rows))
            assert np.abs(f32(o[tag + ".score_samples"]) - model.score_samples(f64(rows))).max() <= 1e-4
            assert np.abs(f32(o[tag + ".predict_proba"]).reshape(len(rows), -1) - proba).max() <= 1e-5
            top2 = np.sort(proba, axis=1)[:, -2:]
            assert (top2[:, 1] - top2[:, 0] > 1e-5).all()  # no near-tie among these rows: predict is checked on every one
            np.testing.assert_array_equal(np.frombuffer(o[tag + ".predict"], "<i2"), model.predict(f64(rows)))
        np.testing.assert_array_equal(nb.classes_[np.frombuffer(o["nb.predict"], "<i2")], nb.predict(f64(Xte)))
        assert np.abs(f32(o["nb.predict_proba"]).reshape(len(Xte), -1) - nb.predict_proba(f64(Xte))).max() <= 1e-5
        expected = envelope.predict(f64(Xte))
        np.testing.assert_array_equal(np.frombuffer(o["envelope.predict"], "<i2"), expected)
        np.testing.assert_array_equal(np.frombuffer(o["envelope.is_outlier"], "<i2").astype(bool), expected == -1)
        np.testing.assert_allclose(f32(o["envelope.mahalanobis"]), envelope[-1].mahalanobis(envelope[:-1].transform(f64(Xte))),
                                   rtol=1e-6)
        np.testing.assert_allclose(f32(o["envelope.decision_function"]), envelope.decision_function(f64(Xte)), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f32(o["envelope.score_samples"]), envelope.score_samples(f64(Xte)), rtol=1e-6)
    return "emlmixture", script, files, check


def kmeans_learning(tmp):
    X, _ = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    X_fit, X_new, X_test = X[:100], X[100:140], X[140:]
    km = KMeans(n_clusters=3, random_state=0, n_init=3).fit(f64(X_fit))
    mbk = make_pipeline(StandardScaler(), MiniBatchKMeans(n_clusters=3, random_state=0, n_init=3)).fit(f64(X_fit))
    km_stored = mpyml.export(km, tmp / "km.txt")
    mbk_stored = mpyml.export(mbk, tmp / "mbk.txt")
    n, d = len(X_test), X.shape[1]
    script = _MIXTURE_SCRIPT.format(tag="km", d=d, k=3, n=n) + _mixture_methods("km", km_stored, n, [("transform", 3)])
    script += f"""
m = emlmixture.new({d}, 3)
emlmixture.load_model(m, 'mbk.txt')
N = load('new.bin', 'f')
labels = zeros('h', {len(X_new)})
for r in range({len(X_new)}):
    labels[r] = m.partial_fit(N[{d} * r:{d} * r + {d}])
out('labels', labels)
emlmixture.save_model(m, 'mbk_updated.txt')
with open('mbk_updated.txt', 'rb') as f:
    out('saved', f.read())
again = emlmixture.new({d}, 3)
emlmixture.load_model(again, 'mbk_updated.txt')
X = load('x_{d}.bin', 'f')
reloaded = zeros('f', {n * 3})
again.transform(X, reloaded)
out('reloaded', reloaded)
x = N[:{d}]
measure('mbk.partial_fit', lambda: m.partial_fit(x))
"""

    def check(o):
        np.testing.assert_array_equal(np.frombuffer(o["km.predict"], "<i2"), km.predict(f64(X_test)))
        np.testing.assert_array_equal(np.frombuffer(o["km.predict"], "<i2"), km_stored.predict(X_test))
        transform = f32(o["km.transform"]).reshape(n, 3)
        np.testing.assert_array_equal(transform, km_stored.transform(X_test))
        np.testing.assert_allclose(transform, km.transform(f64(X_test)), rtol=1e-5, atol=1e-5)
        labels = np.frombuffer(o["labels"], "<i2")
        learnt = copy.deepcopy(mbk_stored)
        np.testing.assert_array_equal(labels, learnt.partial_fit(X_new))  # the mirror, row by row
        assert o["saved"].decode() == mixture_format.dumps(learnt)
        np.testing.assert_array_equal(f32(o["reloaded"]).reshape(n, 3), learnt.transform(X_test))
        # MiniBatchKMeans' update with batches of one row, in the pipeline's scaled space
        scaler, ref = mbk[0], mbk[-1]
        centres, counts = ref.cluster_centers_.copy(), ref._counts.astype(np.float64)
        for y, label in zip(scaler.transform(f64(X_new)), labels):
            counts[label] += 1
            centres[label] += (y - centres[label]) / counts[label]
        saved = mixture_format.read(o["saved"])
        np.testing.assert_allclose(np.array(saved.rows[:3], dtype=np.float64), centres * scaler.scale_ + scaler.mean_,
                                   rtol=1e-4, atol=1e-4)
    files = {"km.txt": tmp / "km.txt", "mbk.txt": tmp / "mbk.txt", "x_13.bin": X_test.tobytes(), "new.bin": X_new.tobytes()}
    return "emlmixture", script, files, check


WORKLOADS = [trees_int16, trees_float32_pipeline, iir_float32_q15, fft, knn, linear, cnn_float32, cnn_int8,
             boosting, boosting_xgboost_lightgbm, isolation_forest, mixture_models, kmeans_learning]


@pytest.fixture(scope="session")
def built():
    """Every module for x64 and every board's arch, and every board's firmware."""
    for arch in ["x64"] + sorted({b.arch for b in boards.BOARDS.values()}):
        for module in build.NATMODS:
            build.build(module, arch)
    for board in BOARDS:
        boards.firmware(board)


@pytest.fixture(scope="module")
def unix_results(built, tmp_path_factory):
    """{workload: (parsed unix-port output, check, module, script, files)}, computed once."""
    cache = {}

    def get(workload):
        if workload.__name__ not in cache:
            module, script, files, check = workload(tmp_path_factory.mktemp(workload.__name__))
            script = PRELUDE.replace("MODULE", module) + script
            parsed = parse(boards.run("unix", script, files))
            check(parsed["OUT"])
            cache[workload.__name__] = (parsed, check, module, script, files)
        return cache[workload.__name__]
    return get


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.__name__)
@pytest.mark.parametrize("board", BOARDS)
def test_workload_on_board(unix_results, board, workload):
    unix, check, module, script, files = unix_results(workload)
    got = parse(boards.run(board, script, files))
    assert got["OUT"].keys() == unix["OUT"].keys()
    for label in unix["OUT"]:
        assert got["OUT"][label] == unix["OUT"][label], "%s differs from the unix port's" % label
    check(got["OUT"])
    assert got["ALLOC"] and all(v == 0 for v in got["ALLOC"].values()), got["ALLOC"]
    board_report.record(board, module, workload.__name__, got["RAM"], got["US"])


def test_wrong_arch_is_refused(built):
    wrong = {"emliir.mpy": build.MPY_OUT / "x64_6.3" / "emliir.mpy"}
    with pytest.raises(boards.BoardError, match="ValueError: incompatible .mpy arch"):
        boards.run("MPS2_AN385", "import emliir", modules=wrong)


def test_unix_and_board_share_the_interface(built):
    script = "import os\nprint(open('a.txt').read())\nwith open('b.txt', 'w') as f:\n    f.write('x')\nprint(sorted(os.listdir()))"
    files = {"a.txt": b"hello"}
    assert boards.run("unix", script, files, modules={}) == boards.run("VIRT_RV32", script, files, modules={})


@pytest.mark.skipif(shutil.which("mpremote") is None, reason="pip install mpremote (the test extra)")
def test_mpremote_mounts_a_folder_and_predicts(built, tmp_path):
    """The user's way: real mpremote on the board's serial port, a mounted folder with module and model."""
    X, y = load_iris(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X.astype(np.float32), y)
    stored = mpyml.export(rf, tmp_path / "iris.csv", feature_dtype="float32")
    shutil.copy(build.MPY_OUT / "armv7m_6.3" / "emltrees.mpy", tmp_path)
    code = ("import emltrees, array\nm = emltrees.new(%d, %d, %d)\nemltrees.load_model(m, 'iris.csv')\n"
            "print('class', m.predict(array.array('f', %r)))" % (stored.n_trees, stored.n_nodes, stored.n_leaves,
                                                                  [float(v) for v in X[120]]))
    with boards.serial_pty("MPS2_AN385") as port:
        result = subprocess.run(["mpremote", "connect", port, "mount", str(tmp_path), "exec", code],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^class (\d+)", result.stdout, re.M).group(1) == str(rf.predict(X[120:121].astype(np.float32))[0])
