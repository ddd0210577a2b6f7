"""Seeded fuzzing of every model-file loader: the device's (the unix port's real natmods and
mpy/npyfile) against the host reader's (exporter/mpyml/formats/, mpyml.iir, numpy.load for .npy).

A format is one entry of FORMATS (`Format`): how to make valid seed files through the public
exporter API, the MicroPython code that loads one file and predicts a few rows, and the host
reader with its numpy mirror of those predictions. `fuzz(fmt, n_mutants, seed)` makes the
mutants (`mutants`), runs them in batches on the unix port (one micropython process per batch,
one output line per file, a watchdog per batch; a file that hangs or kills the interpreter is
rerun alone to confirm), reads each with the host reader and classifies it (`Report`).

Used by tests/test_fuzz.py (a few hundred mutants per format) and benchmarks/fuzz.py (>= 10,000).
"""

from __future__ import annotations

import ast
import io
import os
import random
import selectors
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import mpyml
from mpyml import device, iir
from mpyml.formats import linear as linear_format, mixture as mixture_format, neighbors as neighbors_format
from mpyml.formats import nets as nets_format, trees as trees_format

REPO = Path(__file__).resolve().parents[1]
NPYFILE_DIR = REPO / "mpy" / "npyfile"
CLEAN_ERRORS = ("ValueError", "TypeError", "MemoryError")


# ---------------------------------------------------------------- formats

@dataclass
class Seed:
    name: str
    data: bytes
    caps: list  # capacities the device model is made with (what a user reads off `mpyml inspect`)
    rows: list  # input rows (lists of floats or ints) whose predictions are compared


@dataclass
class Format:
    """One file format. `device_code` defines `run(path, caps, rows)` in MicroPython, returning a one-line
    text of the loaded model's predictions; `host_run(data, caps, rows)` returns the same text from the
    host reader's model, raises ValueError where the host reader refuses the file, and raises
    `Unfit` for a file the host reads but that needs more than `caps` (the device must refuse it)."""

    name: str
    binary: bool  # False: text records with an end record; True: see `mutate_binary`
    make_seeds: Callable[[Path], list]
    modules: tuple  # natmods to build for the device code
    device_code: str
    host_run: Callable[[bytes, list, list], str]
    same: Callable[[str, str], bool] = lambda device_text, host_text: device_text == host_text
    extra_path: tuple = ()


class Unfit(Exception):
    """The host reads the file, but the device model made with the seed's capacities cannot hold it."""


def _hex32(values) -> str:
    return np.asarray(values, dtype=np.float32).astype("<f4").tobytes().hex()


def _label_text(labels) -> str:
    """Labels as the device's _labels() prints them (type letter and exact value)."""
    if labels is None:
        return "-"
    out = []
    for v in labels:
        v = v.item() if hasattr(v, "item") else v
        if isinstance(v, bool):
            out.append("b%d" % v)
        elif isinstance(v, int):
            out.append("i%d" % v)
        elif isinstance(v, float):
            out.append("f" + struct.pack("<d", v).hex())
        else:
            out.append("s" + v.encode().hex())
    return ";".join(out)


# The device side's helpers, shared by every format's device code.
DEVICE_HELPERS = r"""
import array, binascii, struct
def _hex(buf):
    return binascii.hexlify(bytes(buf)).decode()
def _labels(labels):
    if labels is None:
        return '-'
    out = []
    for v in labels:
        if type(v) is bool:
            out.append('b%d' % v)
        elif type(v) is int:
            out.append('i%d' % v)
        elif type(v) is float:
            out.append('f' + _hex(struct.pack('<d', v)))
        else:
            out.append('s' + _hex(v.encode()))
    return ';'.join(out)
def _fit(row, n):
    return [float(row[j % len(row)]) if type(row[j % len(row)]) is str else row[j % len(row)] for j in range(n)]
def _fhex(values):
    # float32 values as hex bits, every NaN as 'nan' (its sign and payload are not part of the contract)
    return ''.join('nan' if v != v else _hex(struct.pack('<f', v)) for v in values)
"""


def fit_rows(rows, n):
    """Each row repeated or cut to n values (a mutant may load with another input width); 'nan' is NaN."""
    return [[float(row[j % len(row)]) if isinstance(row[j % len(row)], str) else row[j % len(row)] for j in range(n)]
            for row in rows]


def _fhex32(values) -> str:
    """The device's _fhex: float32 bits in hex, every NaN as 'nan'."""
    return "".join("nan" if v != v else _hex32([v]) for v in np.asarray(values, dtype=np.float32).ravel())


# -- mpyml-neighbors

def _neighbors_seeds(tmp: Path) -> list:
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    pick = np.r_[0:7, 50:57, 100:107]
    X, y = X[pick], y[pick]
    Xi = np.round(X * 10).astype(np.int64)
    names = np.array(["setosa", "versi,color", "vir ginica%"])[y]
    seeds = []

    def add(name, est, Xfit, yfit, dtype, rows, **kw):
        est.fit(Xfit, yfit) if yfit is not None else est.fit(Xfit)
        path = tmp / ("neighbors_%s.csv" % name)
        stored = mpyml.export(est, path, feature_dtype=dtype, **kw)
        model = getattr(stored, "model", stored)
        caps = [model.n_items + 3, model.items.shape[1], model.k + 2]
        seeds.append(Seed(name, path.read_bytes(), caps, rows))

    add("int16_str", KNeighborsClassifier(3), Xi, names, "int16", Xi[[1, 9, 20]].tolist())
    add("float32_distance", KNeighborsClassifier(4, weights="distance", metric="manhattan"), X, y + 3, "float32",
        X[[2, 12]].tolist())
    add("neighbors_chebyshev", NearestNeighbors(n_neighbors=2, metric="chebyshev"), X, None, "float32", X[[3, 17]].tolist())
    add("pipeline_pca", make_pipeline(StandardScaler(), PCA(2), KNeighborsClassifier(3)), X, names, "float32",
        X[[0, 10, 19]].tolist())
    return seeds


NEIGHBORS_DEVICE = r"""
import emlneighbors
def run(path, caps, rows):
    m = emlneighbors.new(caps[0], caps[1], caps[2])
    emlneighbors.load_model(m, path)
    out = []
    for row in rows:
        if m.n_steps or m.typecode == 'f':
            x = array.array('f', _fit(row, m.n_input_features))
        else:
            x = array.array('h', [int(v) for v in _fit(row, m.n_input_features)])
        if m.labeled:
            out.append(str(m.predict(x)))
        else:
            out.append(_hex(array.array('f', [m.score(x)])))
    return '%s %s %s' % (','.join(out), _labels(m.classes), _labels(m.feature_names))
"""


def _neighbors_host(data: bytes, caps, rows) -> str:
    stored = neighbors_format.read(data)
    model = getattr(stored, "model", stored)
    if model.n_items > caps[0] or model.items.shape[1] != caps[1] or model.k > caps[2]:
        raise Unfit()
    X = fit_rows(rows, stored.n_features if hasattr(stored, "steps") else model.n_features)
    if hasattr(stored, "steps"):
        X = stored.steps.transform(np.asarray(X, dtype=np.float32))
    if model.labels is not None:
        pred = ",".join(str(int(v)) for v in model.predict_index(X))
    else:
        pred = ",".join(_hex32([v]) for v in model.score(X))
    names = stored.steps.feature_names if hasattr(stored, "steps") else model.feature_names
    return "%s %s %s" % (pred, _label_text(model.classes), _label_text(names))


# -- mpyml-linear

def _linear_seeds(tmp: Path) -> list:
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versi,color", "vir ginica%"])[y]
    rows = X[[0, 60, 120]].tolist()
    seeds = []

    def add(name, est, yfit):
        est.fit(X, yfit)
        path = tmp / ("linear_%s.csv" % name)
        stored = mpyml.export(est, path)
        seeds.append(Seed(name, path.read_bytes(), [len(stored.steps) + 1, stored.n_values + 8], rows))

    add("softmax_str", make_pipeline(StandardScaler(), SelectKBest(k=3), LogisticRegression(max_iter=500)), names)
    add("logistic_bool", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), y == 2)
    add("regressor", make_pipeline(MinMaxScaler(), LinearRegression()), X[:, 0] * 2.5)
    add("transformer", make_pipeline(StandardScaler(), PCA(2)), None)
    return seeds


LINEAR_DEVICE = r"""
import emllinear
def run(path, caps, rows):
    m = emllinear.new(caps[0], caps[1])
    emllinear.load_model(m, path)
    y = array.array('f', bytes(4 * m.width))
    p = array.array('f', bytes(4 * m.n_outputs))
    out = []
    for row in rows:
        x = array.array('f', _fit(row, m.n_features))
        m.transform(x, y)
        text = _hex(y)
        if m.kind == 'classifier':
            text += ':%d' % m.predict(x)
            try:
                m.predict_proba(x, p)
                text += ':' + _hex(p)
            except TypeError:
                text += ':-'
        out.append(text)
    return '%s %s %s' % (','.join(out), _labels(m.classes), _labels(m.feature_names))
"""


def _linear_host(data: bytes, caps, rows) -> str:
    stored = linear_format.read(data)
    if len(stored.steps) > caps[0] or stored.n_values > caps[1]:
        raise Unfit()
    X = np.asarray(fit_rows(rows, stored.n_features), dtype=np.float32)
    Y = stored.transform(X)
    out = []
    for r in range(len(X)):
        text = _hex32(Y[r])
        if stored.kind == "classifier":
            text += ":%d" % stored.predict_index(X[r:r + 1])[0]
            text += ":" + ("-" if stored.proba == "none" else _hex32(stored.predict_proba(X[r:r + 1])[0]))
        out.append(text)
    return "%s %s %s" % (",".join(out), _label_text(stored.classes), _label_text(stored.feature_names))


# -- mpyml-trees

def _trees_seeds(tmp: Path) -> list:
    import warnings

    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, ExtraTreesRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X, y = load_iris(return_X_y=True)
    Xi = np.round(X * 10).astype(np.int64)
    names = np.array(["setosa", "versi,color", "vir ginica%"])[y]
    frame = pd.DataFrame(X, columns=["sepal length", "sepal,width", "petal%len", "petal w"])
    Xnan = X.copy()
    Xnan[::7, 2] = np.nan
    Xnan[3::11, 0] = np.nan
    rows = X[[0, 60, 120, 75]].tolist()
    nan_rows = [["nan", 3.0, 1.4, 0.2], [6.0, 2.9, "nan", 1.5], [7.1, 3.0, 5.9, "nan"], X[110].tolist()]
    seeds = []

    def add(name, est, Xfit, yfit, rows, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xfit, yfit)
            path = tmp / ("trees_%s.csv" % name)
            stored = mpyml.export(est, path, **kw)
        forest = getattr(stored, "model", stored)
        caps = [forest.n_trees + 1, forest.n_nodes + 3, forest.n_leaves + 2]
        seeds.append(Seed(name, path.read_bytes(), caps, rows))

    add("forest_counts_str_names", RandomForestClassifier(3, max_depth=3, random_state=0), frame, names, rows,
        feature_dtype="float32")
    # class_weight without bootstrap (scikit-learn's bootstrap draws by weight): float64 leaves
    add("forest_float64_balanced", RandomForestClassifier(3, max_depth=3, bootstrap=False, max_features=2,
                                                          class_weight="balanced", random_state=0),
        X[:120], y[:120] + 2, rows, feature_dtype="float32")
    add("forest_hard_int16", RandomForestClassifier(4, max_depth=3, random_state=2), Xi, y == 1,
        Xi[[0, 60, 120, 75]].tolist(), feature_dtype="int16", voting="hard")
    add("tree_int16_counts", DecisionTreeClassifier(max_depth=4, random_state=0), Xi, names,
        Xi[[5, 55, 105, 130]].tolist(), feature_dtype="int16")
    add("regressor_float32", RandomForestRegressor(3, max_depth=3, random_state=0), X[:, 1:], X[:, 0],
        X[[0, 60, 120], 1:].tolist(), feature_dtype="float32")
    add("extra_regressor_int16", ExtraTreesRegressor(2, max_depth=3, random_state=0), Xi, X[:, 3] * 3,
        Xi[[0, 60, 120]].tolist(), feature_dtype="int16")
    add("nan_trained_tree", DecisionTreeClassifier(max_depth=4, random_state=0), Xnan, names, nan_rows,
        feature_dtype="float32")
    add("nan_trained_regressor", DecisionTreeRegressor(max_depth=3, random_state=0), Xnan, X[:, 3], nan_rows,
        feature_dtype="float32")
    add("adaboost_samme", AdaBoostClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=4, random_state=0),
        X, y, rows, feature_dtype="float32")
    add("bagging", BaggingClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=3, random_state=0), X, names,
        rows, feature_dtype="float32")
    add("pipeline_pca", make_pipeline(StandardScaler(), PCA(2), DecisionTreeClassifier(max_depth=3, random_state=0)),
        X, names, rows)
    return seeds


TREES_DEVICE = r"""
import emltrees
def run(path, caps, rows):
    m = emltrees.new(caps[0], caps[1], caps[2])
    emltrees.load_model(m, path)
    out = []
    for row in rows:
        values = _fit(row, m.n_features)
        x = array.array(m.typecode, values if m.typecode == 'f' else [int(v) for v in values])
        if m.kind == 'classifier':
            p = array.array('f', bytes(4 * m.n_classes))
            m.predict_proba(x, p)
            out.append('%d:%s' % (m.predict(x), _fhex(p)))
        else:
            out.append(_fhex([m.predict(x)]))
    return '%s %s %s %s' % (m.kind, m.voting, ','.join(out), _labels(m.classes))
"""


def _trees_host(data: bytes, caps, rows) -> str:
    stored = trees_format.read(data)
    forest = getattr(stored, "model", stored)
    if forest.n_trees > caps[0] or forest.n_nodes > caps[1] or forest.n_leaves > caps[2]:
        raise Unfit()
    steps = getattr(stored, "steps", None)
    X = np.asarray(fit_rows(rows, forest.n_features if steps is None else steps.n_features), dtype=np.float64)
    X = X.astype(np.int16) if forest.dtype == "int16" else X.astype(np.float32)
    if steps is not None:
        X = steps.transform(X)
    out = []
    if forest.kind == "classifier":
        for index, p in zip(forest.predict_index(X), forest.predict_proba(X)):
            out.append("%d:%s" % (index, _fhex32(p)))
    else:
        out = [_fhex32([v]) for v in forest.predict_index(X)]
    voting = forest.voting or "None"
    return "%s %s %s %s" % (forest.kind, voting, ",".join(out), _label_text(forest.classes))


def _trees_same(device_text: str, host_text: str) -> bool:
    """Bit for bit, but for SAMME's probabilities: float32 on the device, float64 on the host (within 1e-5)."""
    if device_text == host_text:
        return True
    d, h = device_text.split(" "), host_text.split(" ")
    if d[:2] != h[:2] or d[3:] != h[3:] or d[1] != "samme":
        return False
    for d_row, h_row in zip(d[2].split(","), h[2].split(",")):
        (d_index, d_p), (h_index, h_p) = d_row.split(":"), h_row.split(":")
        if d_index != h_index or "nan" in d_p + h_p or len(d_p) != len(h_p):
            return False
        dp = np.frombuffer(bytes.fromhex(d_p), "<f4")
        hp = np.frombuffer(bytes.fromhex(h_p), "<f4")
        if not np.allclose(dp, hp, rtol=0, atol=1e-5):
            return False
    return len(d[2].split(",")) == len(h[2].split(","))


# -- mpyml-mixture

def _mixture_seeds(tmp: Path) -> list:
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.covariance import EllipticEnvelope
    from sklearn.datasets import load_iris
    from sklearn.mixture import GaussianMixture
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versi,color", "vir ginica%"])[y]
    rows = X[[0, 60, 120, 30]].tolist() + [[9.0, 0.5, 7.0, -1.0]]
    seeds = []

    def add(name, est, yfit=None, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, yfit) if yfit is not None else est.fit(X)
            path = tmp / ("mixture_%s.csv" % name)
            stored = mpyml.export(est, path, **kw)
        seeds.append(Seed(name, path.read_bytes(), [stored.n_features, stored.n_components], rows))
        return path

    add("gmm_full_threshold", GaussianMixture(3, covariance_type="full", random_state=0), X=X, outlier_percentile=5.0)
    add("gmm_tied", GaussianMixture(2, covariance_type="tied", random_state=0))
    add("gmm_diag_threshold", GaussianMixture(3, covariance_type="diag", random_state=0), X=X)
    add("gmm_spherical", GaussianMixture(2, covariance_type="spherical", random_state=0))
    add("naive_bayes_str", GaussianNB(), names)
    add("naive_bayes_float", GaussianNB(), y * 2.0 - 5.0 * (y == 2))
    add("envelope", EllipticEnvelope(random_state=0))
    kmeans = add("kmeans", KMeans(3, n_init=2, random_state=0))
    add("kmeans_scaled_diag", make_pipeline(StandardScaler(), KMeans(2, n_init=2, random_state=0)))
    # a k-means file written by the device after on-device updates (emlmixture.save_model)
    saved = tmp / "mixture_kmeans_device.csv"
    device.run("import emlmixture, array\nm = emlmixture.new(4, 3)\nemlmixture.load_model(m, %r)\n"
               "for row in %r:\n    m.partial_fit(array.array('f', row))\nemlmixture.save_model(m, %r)\n"
               % (str(kmeans), X[::9].tolist(), str(saved)))
    seeds.append(Seed("kmeans_saved_on_device", saved.read_bytes(), [4, 3], rows))
    return seeds


MIXTURE_DEVICE = r"""
import emlmixture
def run(path, caps, rows):
    m = emlmixture.new(caps[0], caps[1])
    emlmixture.load_model(m, path)
    d, k = m.n_features, m.n_components
    one = array.array('f', [0])
    many = array.array('f', bytes(4 * k))
    out = []
    for row in rows:
        x = array.array('f', _fit(row, d))
        t = [str(m.predict(x))]
        if m.kind in ('mixture', 'naive_bayes'):
            m.predict_proba(x, many)
            t.append(_fhex(many))
        if m.kind in ('mixture', 'envelope'):
            m.score_samples(x, one)
            t.append(_fhex(one))
            try:
                t.append(str(int(m.is_outlier(x))))
            except TypeError:
                t.append('-')
        if m.kind == 'envelope':
            m.decision_function(x, one)
            t.append(_fhex(one))
            m.mahalanobis(x, one)
            t.append(_fhex(one))
        if m.kind == 'kmeans':
            m.transform(x, many)
            t.append(_fhex(many))
            if min(x) == min(x) and max(x) == max(x):
                t.append(str(m.partial_fit(x)))
        out.append(':'.join(t))
    threshold = None if m.threshold is None else [m.threshold]
    return '%s %s %s %s %s' % (m.kind, m.covariance_type, ','.join(out), _labels(threshold), _labels(m.classes))
"""


def _mixture_host(data: bytes, caps, rows) -> str:
    stored = mixture_format.read(data)
    if stored.n_features > caps[0] or stored.n_components > caps[1]:
        raise Unfit()
    out = []
    for row in fit_rows(rows, stored.n_features):
        x = np.asarray([row], dtype=np.float32)
        t = [str(int(stored.predict(x)[0]))]
        if stored.kind in ("mixture", "naive_bayes"):
            t.append(_fhex32(stored.predict_proba(x)))
        if stored.kind in ("mixture", "envelope"):
            t.append(_fhex32(stored.score_samples(x)))
            t.append("-" if stored.kind == "mixture" and stored.threshold is None else str(int(stored.is_outlier(x)[0])))
        if stored.kind == "envelope":
            t.append(_fhex32(stored.decision_function(x)))
            t.append(_fhex32(stored.mahalanobis(x)))
        if stored.kind == "kmeans":
            t.append(_fhex32(stored.transform(x)))
            if np.all(np.isfinite(x)):
                t.append(str(int(stored.partial_fit(x)[0])))
        out.append(":".join(t))
    threshold = None if stored.threshold is None else [float(stored.threshold)]
    return "%s %s %s %s %s" % (stored.kind, stored.covariance_type, ",".join(out), _label_text(threshold),
                               _label_text(stored.classes))


# -- mpyml-iir

SIGNAL = [0.0, 0.5, -0.25, 1.0, 0.75, -1.0, 0.1, 0.2, -0.6, 0.9, 0.0, -0.3, 0.45, 1.0, -1.0, 0.05]


def _iir_seeds(tmp: Path) -> list:
    from scipy import signal

    seeds = []
    for name, sos in (("butter4_float32", signal.butter(4, [0.1, 0.3], btype="band", output="sos")),
                      ("cheby1_3_float32", signal.cheby1(3, 1, 0.2, output="sos"))):
        seeds.append(Seed(name, iir.dumps(sos).encode(), [], [SIGNAL]))
    for name, sos in (("butter4_q15", signal.butter(4, 0.2, output="sos")),
                      ("ellip4_q15", signal.ellip(4, 1, 40, [0.2, 0.4], btype="band", output="sos"))):
        seeds.append(Seed(name, iir.dumps(iir.quantize_q15(sos)).encode(), [], [[int(v * 20000) for v in SIGNAL]]))
    return seeds


IIR_DEVICE = r"""
import emliir
def run(path, caps, rows):
    f = emliir.load(path)
    x = array.array(f.typecode, [v if f.typecode == 'f' else int(v) for v in rows[0]])
    f.run(x)
    return '%s %d %s' % (f.typecode, f.n_stages, _hex(x))
"""


def _iir_host(data: bytes, caps, rows) -> str:
    coeffs = iir.loads(data)
    if coeffs.dtype == np.float32:
        y, _ = iir.sosfilt_float32(coeffs, np.asarray(rows[0], dtype=np.float32))
        return "f %d %s" % (len(coeffs), _hex32(y))
    y, _ = iir.sosfilt_q15(coeffs, np.asarray([int(v) for v in rows[0]], dtype=np.int16))
    return "h %d %s" % (len(coeffs), np.asarray(y, dtype="<i2").tobytes().hex())


# -- mpyml-nets

def _nets_seeds(tmp: Path) -> list:
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = load_iris(return_X_y=True)
    rows = X[[0, 75, 140]].tolist()
    seeds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = np.array(["setosa", "versicolor", "virginica"])  # str labels: the labels block is fuzzed too
        clf = MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=300, random_state=0).fit(X, names[y])
        reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(X, X[:, 0])
    for name, est, quantize in (("mlp_float32", clf, None), ("mlp_int8", clf, "int8"),
                                ("mlp_regressor_int8", reg, "int8"), ("mlp_regressor_float32", reg, None)):
        path = tmp / ("nets_%s.bin" % name)
        stored = mpyml.export(est, path, quantize=quantize, representative_data=X)
        seeds.append(Seed(name, path.read_bytes(), [stored.arena_bytes], rows))
    return seeds


NETS_DEVICE = r"""
import emlcnn
def run(path, caps, rows):
    net = emlcnn.new(caps[0])
    emlcnn.load_model(net, path)
    out = array.array('f', bytes(4 * net.n_outputs))
    texts = []
    for row in rows:
        net.predict(array.array('f', _fit(row, net.n_inputs)), out)
        texts.append(_hex(out))
    return '%s:%s:%s %s' % (net.dtype, _labels(net.classes), _labels(net.feature_names), ','.join(texts))
"""


def _nets_host(data: bytes, caps, rows) -> str:
    stored = nets_format.loads(data)
    if stored.arena_bytes > caps[0]:
        raise Unfit()
    Y = stored.outputs(np.asarray(fit_rows(rows, stored.n_inputs), dtype=np.float32))
    return "%s:%s:%s %s" % (stored.dtype, _label_text(stored.classes), _label_text(stored.feature_names),
                            ",".join(_hex32(y) for y in Y))


def _nets_same(device_text: str, host_text: str) -> bool:
    """int8 outputs are bit-identical; float32 ones agree to float32 rounding (docs/formats.md:
    the numpy mirror sums in another order), unless the sums overflow float32."""
    if device_text == host_text:
        return True
    (d_dtype, d_rows), (h_dtype, h_rows) = device_text.split(" "), host_text.split(" ")
    if d_dtype != h_dtype or not d_dtype.startswith("float32:"):
        return False
    d = np.frombuffer(bytes.fromhex(d_rows.replace(",", "")), "<f4")
    h = np.frombuffer(bytes.fromhex(h_rows.replace(",", "")), "<f4")
    if d.shape != h.shape:
        return False
    if not np.all(np.isfinite(h)) or np.max(np.abs(h)) > 1e30:
        return True  # the order of a float32 sum decides where it overflows
    return bool(np.allclose(d, h, rtol=1e-4, atol=1e-5 * max(1.0, float(np.max(np.abs(h))))))


# -- .npy (mpy/npyfile)

NPY_TYPECODES = {"i1": "b", "u1": "B", "b1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q",
                 "u8": "Q", "f4": "f", "f8": "d"}


def _npy_seeds(tmp: Path) -> list:
    rng = np.random.default_rng(0)
    arrays = [
        ("f4_2d", rng.normal(size=(4, 3)).astype("<f4")),
        ("f8_fortran", np.asfortranarray(rng.normal(size=(3, 4)))),
        ("i2_fortran_3d", np.asfortranarray(rng.integers(-30000, 30000, size=(2, 3, 2)).astype("<i2"))),
        ("u1_1d", rng.integers(0, 255, size=7).astype("u1")),
        ("i1_1d", rng.integers(-128, 127, size=5).astype("i1")),
        ("b1", np.array([True, False, True])),
        ("u2", np.arange(6, dtype="<u2").reshape(2, 3)),
        ("i4", np.arange(-3, 3, dtype="<i4")),
        ("u4_fortran", np.asfortranarray(np.arange(6, dtype="<u4").reshape(3, 2))),
        ("i8", np.array([2**62, -2**62, 5], dtype="<i8")),
        ("u8", np.array([2**64 - 1, 0], dtype="<u8")),
        ("f4_empty", np.zeros((0, 3), dtype="<f4")),
        ("f8_scalar", np.array(1.5)),
    ]
    seeds = []
    for name, a in arrays:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        seeds.append(Seed(name, buf.getvalue(), [], []))
    return seeds


NPY_DEVICE = r"""
import npyfile
def run(path, caps, rows):
    shape, values = npyfile.load(path)
    return '%s %s %s' % (','.join(str(d) for d in shape), repr(values)[7], _hex(values))
"""


def _npy_host(data: bytes, caps, rows) -> str:
    """numpy.load, limited to what npyfile documents: simple numeric dtypes, little-endian (or one byte)."""
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # numpy's refusals come as ValueError, EOFError, TokenError, MemoryError...
        raise ValueError("%s: %s" % (type(e).__name__, e)) from None
    kind = a.dtype.str[1:]
    if kind not in NPY_TYPECODES or (a.dtype.str[0] == ">" and a.dtype.itemsize > 1):
        raise ValueError("dtype %s is not supported by npyfile" % a.dtype.str)
    start, end = _npy_header(data)
    text = data[start:end].decode("latin1")
    d = ast.literal_eval(text)
    canonical = ("{'descr': %r, 'fortran_order': %r, 'shape': %r" % (d["descr"], d["fortran_order"], d["shape"])).replace(" ", "")
    header = text.strip(" \t\n\r\x0c").replace(" ", "").replace("\n", "")
    if header not in (canonical + ",}", canonical + "}") or d["descr"][:1] not in ("<", ">", "|", "="):
        raise Unfit()  # numpy reads it, but it is not the dict numpy writes (up to spaces): npyfile refuses it
    values = np.ascontiguousarray(a).tobytes()
    return "%s %s %s" % (",".join(str(d) for d in a.shape), NPY_TYPECODES[kind], values.hex())


FORMATS = {
    "mpyml-neighbors": Format("mpyml-neighbors", False, _neighbors_seeds, ("emlneighbors",), NEIGHBORS_DEVICE,
                              _neighbors_host),
    "mpyml-linear": Format("mpyml-linear", False, _linear_seeds, ("emllinear",), LINEAR_DEVICE, _linear_host),
    "mpyml-iir": Format("mpyml-iir", False, _iir_seeds, ("emliir",), IIR_DEVICE, _iir_host),
    "mpyml-nets": Format("mpyml-nets", True, _nets_seeds, ("emlcnn",), NETS_DEVICE, _nets_host, _nets_same),
    "npy": Format("npy", True, _npy_seeds, (), NPY_DEVICE, _npy_host, extra_path=(NPYFILE_DIR,)),
    "mpyml-trees": Format("mpyml-trees", False, _trees_seeds, ("emltrees",), TREES_DEVICE, _trees_host, _trees_same),
    "mpyml-mixture": Format("mpyml-mixture", False, _mixture_seeds, ("emlmixture",), MIXTURE_DEVICE, _mixture_host),
}


# ---------------------------------------------------------------- mutations

EXTREME_INTS = ["2147483648", "2147483647", "-2147483649", "9223372036854775808", "9223372036854775807",
                "18446744073709551616", "18446744073709551617", "4294967296", "4294967295", "-1", "0", "-0",
                "65535", "65536", "32767", "32768", "-32768", "-32769", "16777216", "1073741824", "255", "256",
                "1" + "0" * 40, "-" + "9" * 30, "007", "+1", " 1", "1 ", "", "1.5", "1e3", "0x10", "\u0663", "1_0"]
EXTREME_FLOATS = ["1e308", "1e999", "-1e999", "1e-400", "nan", "NaN", "inf", "-inf", "Infinity", "1e38", "-0.0"]
EXTREME_HEX = ["7f800000", "ff800000", "7fc00000", "ffffffff", "00000001", "80000000", "7f7fffff", "-0000001",
               "0x3f8000", "3F800000", "3f80000", "3f8000000", "3f80000g", " 3f80000", "+3f80000", "3f80 000"]
WORDS = ["int16", "float32", "classifier", "regressor", "neighbors", "transformer", "soft", "hard", "mean", "none",
         "euclidean", "manhattan", "chebyshev", "uniform", "distance", "logistic", "softmax", "ovr", "affine",
         "select", "matrix", "str", "int", "bool", "float", "label", "items", "stages", "steps", "end", "",
         "%", "%4", "%ZZ", "%FF", "\u00e9", "\x1c", "\x0b", "\u00a0", "\u2028", "\r"]
EXTREME_U32 = [0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x10000, 0xFFFF, 255, 256, 2**28, 2**30, 48, 44, 52, 3, 4]
EXTREME_F32 = [float("nan"), float("inf"), -float("inf"), 3.4e38, -3.4e38, 1e-45, 0.0, -0.0, 1e30, 65504.0]


@dataclass
class Mutant:
    data: bytes
    seed: int  # index into the format's seeds
    kind: str  # the mutation's name
    truncated: bool = False  # a cut of the seed's own bytes (must be refused)


def _lines(data: bytes) -> list:
    """The file's lines, each with its b'\\n' (the device's readline())."""
    return data.splitlines(keepends=True)


def _is_record(line: bytes) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(b"#")


def seal(body: bytes) -> bytes:
    """body (a text file without its end record) with a fresh end record: count and CRC-32."""
    if body and not body.endswith(b"\n"):
        body += b"\n"
    n = sum(1 for line in _lines(body) if _is_record(line))
    return body + b"end,%d,%08x\n" % (n, zlib.crc32(body))


def _split_end(data: bytes) -> tuple:
    lines = _lines(data)
    return b"".join(lines[:-1]), lines[-1]


def _replace_field(line: bytes, rng: random.Random, values) -> bytes:
    ending = b"\n" if line.endswith(b"\n") else b""
    fields = line.rstrip(b"\n").split(b",")
    i = rng.randrange(len(fields))
    fields[i] = rng.choice(values).encode()
    return b",".join(fields) + ending


def mutate_text(data: bytes, rng: random.Random) -> tuple:
    """One random mutation of a sealed text file: (name, bytes). Most mutate the records before the
    end record and then seal the result again, so that the parsers behind the CRC see them."""
    body, end = _split_end(data)
    lines = _lines(body)
    op = rng.randrange(12)
    reseal = rng.random() < 0.75
    if op == 0:
        name = "byte flip"
        raw = bytearray(body)
        for _ in range(rng.choice((1, 1, 2, 3))):
            i = rng.randrange(len(raw))
            raw[i] = rng.randrange(256) if rng.random() < 0.5 else raw[i] ^ (1 << rng.randrange(8))
        body = bytes(raw)
    elif op == 1:
        name = "record delete"
        del lines[rng.randrange(len(lines))]
        body = b"".join(lines)
    elif op == 2:
        name = "record duplicate"
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        body = b"".join(lines)
    elif op == 3:
        name = "record swap"
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        body = b"".join(lines)
    elif op in (4, 5, 6):
        name = "extreme number"
        i = rng.randrange(len(lines))
        lines[i] = _replace_field(lines[i], rng, (EXTREME_INTS, EXTREME_FLOATS, EXTREME_HEX)[op - 4])
        body = b"".join(lines)
    elif op == 7:
        name = "word swap"
        i = rng.randrange(len(lines))
        lines[i] = _replace_field(lines[i], rng, WORDS)
        body = b"".join(lines)
    elif op == 8:
        name = "field delete or duplicate"
        i = rng.randrange(len(lines))
        ending = b"\n" if lines[i].endswith(b"\n") else b""
        fields = lines[i].rstrip(b"\n").split(b",")
        j = rng.randrange(len(fields))
        if rng.random() < 0.5 and len(fields) > 1:
            del fields[j]
        else:
            fields.insert(j, fields[j])
        lines[i] = b",".join(fields) + ending
        body = b"".join(lines)
    elif op == 9:
        name = "blank, comment or whitespace"
        i = rng.randrange(len(lines) + 1)
        extra = rng.choice([b"\n", b"# comment\n", b"   \n", b"#\n", b"\r\n"])
        if i < len(lines) and rng.random() < 0.5:
            lines[i] = b" " + lines[i].rstrip(b"\n") + b" \r\n"
        else:
            lines.insert(i, extra)
        body = b"".join(lines)
    elif op == 10:
        name = "end record edit"
        reseal = False
        fields = end.rstrip(b"\n").split(b",")
        choice = rng.randrange(6) if len(fields) == 3 and fields[1].isdigit() and len(fields[2]) == 8 else 5
        if choice == 0:
            fields[2] = fields[2].upper()
        elif choice == 1:
            fields[1] = b"0" + fields[1]
        elif choice == 2:
            fields[rng.randrange(3)] = b" " + fields[rng.randrange(3)] + b" "
        elif choice == 3:
            fields[2] = b"%08x" % (int(fields[2], 16) ^ (1 << rng.randrange(32)))
        elif choice == 4:
            fields[1] = b"%d" % (int(fields[1]) + rng.choice((-1, 1)))
        else:
            fields.append(b"0")
        end = b",".join(fields) + b"\n"
        if rng.random() < 0.3:
            end = end + rng.choice([b"\n", b"x", b"# after\n", end])
    else:
        name = "lines after the end record"
        reseal = False
        end = end + rng.choice([b"end,0,00000000\n", b"\n\n", b"#\n", b" ", b"\x00"])
    if reseal:
        return name + " (resealed)", seal(body)
    return name, body + end


def truncations(data: bytes, rng: random.Random, n_inside: int, binary_offsets=()) -> list:
    """Cuts of `data`: at every record boundary (each line end; for binary files, `binary_offsets`),
    and at n_inside random places (inside numbers). Cutting only the last byte of a text file's
    end record (its optional newline) is not a truncation."""
    last = len(data) - (0 if binary_offsets else 1)
    cuts = set()
    if binary_offsets:
        cuts.update(o for o in binary_offsets if 0 <= o < last)
    else:
        at = 0
        for line in _lines(data):
            at += len(line)
            if at < last:
                cuts.add(at)
                cuts.add(at - 1)  # the line end itself lost
    for _ in range(n_inside):
        cuts.add(rng.randrange(last))
    return sorted(cuts)


NETS_HEADER = nets_format.NET_HEADER.size


def _fix_nets(raw: bytearray, size: bool = True) -> bytes:
    """The CRC-32 (and, with size, payload_bytes) of the file header made right for the payload."""
    if len(raw) >= 16:
        if size:
            struct.pack_into("<I", raw, 8, len(raw) - 16)
        struct.pack_into("<I", raw, 12, zlib.crc32(bytes(raw[16:])))
    return bytes(raw)


def mutate_nets(data: bytes, rng: random.Random) -> tuple:
    raw = bytearray(data)
    n_layers = struct.unpack_from("<H", raw, 18)[0]
    table = (16 + NETS_HEADER, 16 + NETS_HEADER + 48 * n_layers)
    fix = rng.random() < 0.8
    op = rng.randrange(7)
    if op == 0:
        name = "byte flip"
        for _ in range(rng.choice((1, 1, 2))):
            i = rng.randrange(len(raw))
            raw[i] = rng.randrange(256) if rng.random() < 0.5 else raw[i] ^ (1 << rng.randrange(8))
        if fix:
            return name + " (CRC fixed)", _fix_nets(raw, size=False)
        return name, bytes(raw)
    if op == 1:
        name = "header or layer field"
        offset = rng.randrange(16, table[1]) & ~(rng.choice((0, 1, 3)))
        width = rng.choice((1, 2, 4))
        value = rng.choice(EXTREME_U32) & ((1 << (8 * width)) - 1)
        if rng.random() < 0.3:
            value = (struct.unpack_from("<I", raw + bytes(4), offset)[0] + rng.choice((-1, 1))) & ((1 << (8 * width)) - 1)
        raw[offset:offset + width] = value.to_bytes(width, "little")
        del raw[len(data):]
    elif op == 2:
        name = "extreme float"
        offset = rng.randrange(16 + 24, len(raw) - 3) & ~3
        struct.pack_into("<f", raw, offset, rng.choice(EXTREME_F32))
    elif op == 3:
        name = "layer record delete, duplicate or swap"
        records = [raw[table[0] + 48 * i: table[0] + 48 * (i + 1)] for i in range(n_layers)]
        i, j = rng.randrange(n_layers), rng.randrange(n_layers)
        choice = rng.randrange(3)
        if choice == 0 and n_layers > 1:
            del records[i]
            records.append(bytearray(48))
        elif choice == 1:
            records[j] = records[i]
        else:
            records[i], records[j] = records[j], records[i]
        raw[table[0]:table[1]] = b"".join(records)
    elif op == 4:
        name = "file header field"
        offset = rng.choice((4, 6, 8, 12))
        width = 2 if offset < 8 else 4
        raw[offset:offset + width] = (rng.choice(EXTREME_U32) & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        return name, bytes(raw)
    elif op == 5:
        name = "bytes appended"
        raw += bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 48))))
        return name + (" (size fixed)" if fix else ""), _fix_nets(raw) if fix else bytes(raw)
    else:
        name = "block resized"
        i = rng.randrange(table[1], len(raw) + 1)
        if rng.random() < 0.5:
            raw[i:i] = bytes(4 * rng.randrange(1, 4))
        else:
            del raw[i:i + 4 * rng.randrange(1, 4)]
        return name + (" (size and CRC fixed)" if fix else ""), _fix_nets(raw) if fix else bytes(raw)
    if fix:
        return name + " (CRC fixed)", _fix_nets(raw, size=False)
    return name, bytes(raw)


def _npy_header(data: bytes) -> tuple:
    """(header start, header end) offsets of a .npy file's header text."""
    if data[6] == 1:
        return 10, 10 + struct.unpack_from("<H", data, 8)[0]
    return 12, 12 + struct.unpack_from("<I", data, 8)[0]


NPY_DESCRS = ["<f4", "<f8", ">f4", ">i1", "|u1", "|b1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "=f4", "|f4",
              "<c8", "|O", "<U3", "<f2", "", "<", "f4", "<f4 ", "<i16", "V4", "<M8[s]"]


def mutate_npy(data: bytes, rng: random.Random) -> tuple:
    raw = bytearray(data)
    start, end = _npy_header(data)
    header = data[start:end].decode("latin1")
    op = rng.randrange(8)
    if op == 0:
        name = "byte flip in the header"
        i = rng.randrange(end)
        raw[i] = rng.randrange(256) if rng.random() < 0.5 else raw[i] ^ (1 << rng.randrange(8))
        return name, bytes(raw)
    if op == 1:
        name = "byte flip in the data"
        if end >= len(raw):
            return "bytes appended", bytes(raw) + b"\x01"
        i = rng.randrange(end, len(raw))
        raw[i] ^= 1 << rng.randrange(8)
        return name, bytes(raw)
    if op in (2, 3, 4):
        if op == 2:
            name = "extreme shape"
            s, e = header.index("(") + 1, header.index(")")
            dims = [d for d in header[s:e].split(",")]
            dims[rng.randrange(len(dims))] = rng.choice(EXTREME_INTS)
            if rng.random() < 0.2:
                dims.append(rng.choice(("1", "0", "3", "")))
            text = header[:s] + ",".join(dims) + header[e:]
        elif op == 3:
            name = "descr swap"
            s = header.index("'descr': '") + 10
            e = header.index("'", s)
            text = header[:s] + rng.choice(NPY_DESCRS) + header[e:]
        else:
            name = "header text"
            choice = rng.randrange(5)
            if choice == 0:
                text = header.replace("False", "True") if "False" in header else header.replace("True", "False")
            elif choice == 1:
                text = header.replace(", }", ", 'extra': 1, }")
            elif choice == 2:
                text = header.replace("(", "[").replace(")", "]")
            elif choice == 3:
                text = header.replace(",)", ")")
            else:
                i = rng.randrange(len(header))
                text = header[:i] + rng.choice(("'", "}", "{", ",", ":", ")", "(", "\"", " ", "\x00")) + header[i + 1:]
        body = text.encode("latin1", "backslashreplace")
        if rng.random() < 0.7:  # keep the header length consistent, as numpy pads it
            body = body[:end - start - 1].ljust(end - start - 1, b" ") + b"\n" if len(body) <= end - start else body
            struct.pack_into("<H" if data[6] == 1 else "<I", raw, 8, len(body))
        return name, bytes(raw[:start]) + body + bytes(raw[end:])
    if op == 5:
        name = "version or header length"
        if rng.random() < 0.5:
            raw[6] = rng.choice((0, 1, 2, 3, 4, 255))
        else:
            size = 2 if data[6] == 1 else 4
            value = rng.choice(EXTREME_U32) & ((1 << (8 * size)) - 1)
            raw[8:8 + size] = value.to_bytes(size, "little")
        return name, bytes(raw)
    if op == 6:
        name = "bytes appended"
        return name, bytes(raw) + bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 8))))
    name = "magic"
    i = rng.randrange(6)
    raw[i] ^= 1 << rng.randrange(8)
    return name, bytes(raw)


def _binary_boundaries(fmt: Format, data: bytes) -> list:
    """Record boundaries of a binary file: nets file header, network header, each layer record and
    parameter block; npy magic, header length, header, then every item."""
    if fmt.name == "mpyml-nets":
        n_layers = struct.unpack_from("<H", data, 18)[0]
        cuts = [0, 4, 6, 8, 12, 16, 16 + NETS_HEADER] + [16 + NETS_HEADER + 48 * (i + 1) for i in range(n_layers)]
        for i in range(n_layers):
            offset, nbytes = struct.unpack_from("<II", data, 16 + NETS_HEADER + 48 * i + 36)
            cuts += [16 + offset, 16 + offset + nbytes]
        labels = struct.unpack_from("<I", data, 16 + NETS_HEADER - 8)[0]  # the labels block: header, each label
        cuts += [16 + labels, 16 + labels + nets_format.LABELS_HEADER.size]
        return sorted(set(cuts))
    start, end = _npy_header(data)
    itemsize = int(np.load(io.BytesIO(data)).dtype.itemsize)
    return [0, 6, 8, start, end - 1] + list(range(end, len(data), itemsize))


def mutants(fmt: Format, seeds: list, n: int, rng: random.Random) -> list:
    """About n mutants of the seeds: the seeds themselves, every truncation (at every record
    boundary and a few inside numbers), an empty file and random files, then random mutations."""
    out = [Mutant(s.data, i, "seed") for i, s in enumerate(seeds)]
    for i, s in enumerate(seeds):
        boundaries = _binary_boundaries(fmt, s.data) if fmt.binary else ()
        for cut in truncations(s.data, rng, 4, boundaries):
            out.append(Mutant(s.data[:cut], i, "truncation", truncated=True))
    out.append(Mutant(b"", 0, "empty file"))
    for size in (1, 7, 16, 64, 300):
        out.append(Mutant(bytes(rng.randrange(256) for _ in range(size)), rng.randrange(len(seeds)), "random bytes"))
        text = "".join(rng.choice("0123456789abcdef,.-\n#: ") for _ in range(size)).encode()
        out.append(Mutant(text, rng.randrange(len(seeds)), "random text"))
        out.append(Mutant(seal(text), rng.randrange(len(seeds)), "random text (sealed)"))
    mutate = mutate_text if not fmt.binary else (mutate_nets if fmt.name == "mpyml-nets" else mutate_npy)
    while len(out) < n:
        i = rng.randrange(len(seeds))
        data = seeds[i].data
        for _ in range(rng.choice((1, 1, 1, 2))):
            try:
                name, data = mutate(data, rng)
            except (ValueError, IndexError, struct.error):  # a second mutation of a file the first one broke
                name, data = "byte flip", _flip(data, rng)
        out.append(Mutant(data, i, name))
    return out


def _flip(data: bytes, rng: random.Random) -> bytes:
    raw = bytearray(data or b"\0")
    raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    return bytes(raw)


# ---------------------------------------------------------------- running

@dataclass
class Outcome:
    status: str  # 'loaded', 'error' (clean), 'crash', 'hang'
    text: str  # predictions, or the exception's type and message


@dataclass
class Report:
    format: str
    tried: int = 0
    clean_errors: int = 0
    loads: int = 0
    crashes: int = 0
    hangs: int = 0
    silent_accepts: int = 0  # the device loaded a file the host reader rejects
    disagreements: int = 0  # host accepts what the device rejects, or their predictions differ
    truncated_loaded: int = 0
    truncated: int = 0
    findings: list = field(default_factory=list)  # (kind, mutant kind, detail, file bytes)
    seconds: float = 0.0

    def row(self) -> list:
        return [self.format, self.tried, self.clean_errors, self.loads, self.crashes, self.hangs,
                self.silent_accepts, self.disagreements]


TABLE_HEADER = ["format", "tried", "clean errors", "loads", "crashes", "hangs", "silent accepts",
                "host/device disagreements"]


def _device_script(fmt: Format, jobs_path: Path, start: int, seeds: list) -> str:
    caps_rows = [(s.caps, s.rows) for s in seeds]
    return DEVICE_HELPERS + fmt.device_code + r"""
import gc
SEEDS = %r
with open(%r) as f:
    JOBS = f.read().split('\n')
for job in JOBS[%d:]:
    if not job:
        continue
    i, path, s = job.split(' ')
    caps, rows = SEEDS[int(s)]
    try:
        text = run(path, caps, rows)
        print(i, 'L', text)
    except Exception as e:
        clean = isinstance(e, (ValueError, TypeError, MemoryError)) and str(e) != ''
        name = type(e).__name__
        if clean and name not in ('ValueError', 'TypeError', 'MemoryError'):
            name = 'ValueError' if isinstance(e, ValueError) else name
        print(i, 'E', name, repr(str(e)[:100]))
    gc.collect()
""" % (caps_rows, str(jobs_path), start)


def _run_batch(fmt: Format, jobs: list, tmp: Path, seeds: list, start: int, quiet: float) -> tuple:
    """Runs jobs[start:] in one micropython process: ({index: Outcome}, 'ok' | 'died' | 'hang').
    The watchdog kills the process when it prints nothing for `quiet` seconds."""
    jobs_path = tmp / "jobs.txt"
    jobs_path.write_text("\n".join(jobs) + "\n")
    script = tmp / "batch.py"
    script.write_text(_device_script(fmt, jobs_path, start, seeds))
    path = ":".join([str(device.module_dir())] + [str(p) for p in fmt.extra_path])
    env = dict(os.environ, MICROPYPATH=path)
    proc = subprocess.Popen([device.micropython_exe(), "-X", "heapsize=8M", str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    lines, status = [], "ok"
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        pending = b""
        while True:
            if not selector.select(quiet):
                proc.kill()
                status = "hang"
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *done, pending = pending.split(b"\n")
            lines += done
    if proc.wait() != 0 and status == "ok":
        status = "died"
    proc.stdout.close()
    results = {}
    for line in lines:
        parts = line.decode(errors="replace").split(" ", 2)
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        rest = parts[2] if len(parts) > 2 else ""
        if parts[1] == "L":
            results[int(parts[0])] = Outcome("loaded", rest)
        else:
            name, _, message = rest.partition(" ")
            ok = name in CLEAN_ERRORS and message not in ("''", '""')
            results[int(parts[0])] = Outcome("error" if ok else "crash", rest)
    return results, status


def run_device(fmt: Format, files: list, seed_of: list, tmp: Path, seeds: list, quiet: float = 20) -> list:
    """Each file's Outcome on the unix port, in batches. Where a batch hangs (no output for `quiet`
    seconds) or the interpreter dies, the file it was at is rerun alone, and the batch goes on after it."""
    jobs = ["%d %s %d" % (i, p, s) for i, (p, s) in enumerate(zip(files, seed_of))]
    outcomes: dict = {}
    start = 0
    while start < len(jobs):
        results, status = _run_batch(fmt, jobs, tmp, seeds, start, quiet)
        outcomes.update(results)
        if status == "ok":
            break
        at = next((i for i in range(start, len(jobs)) if i not in outcomes), len(jobs))
        if at == len(jobs):
            break
        alone, alone_status = _run_batch(fmt, [jobs[at]], tmp, seeds, 0, quiet)
        if at in alone:
            outcomes[at] = alone[at]
        elif alone_status == "hang":
            outcomes[at] = Outcome("hang", "no output in %g s" % quiet)
        else:
            outcomes[at] = Outcome("crash", "the interpreter died")
        start = at + 1
    return [outcomes.get(i, Outcome("crash", "no result")) for i in range(len(jobs))]


def host_outcome(fmt: Format, data: bytes, seed: Seed) -> Outcome:
    try:
        with np.errstate(all="ignore"):  # mutated parameters overflow float32 in the mirrors as on the device
            return Outcome("loaded", fmt.host_run(data, seed.caps, seed.rows))
    except Unfit:
        return Outcome("unfit", "")
    except ValueError as e:
        return Outcome("error", "%s: %s" % (type(e).__name__, str(e)[:100]))
    except Exception as e:  # the host reader's contract is ValueError too
        return Outcome("crash", "%s: %s" % (type(e).__name__, str(e)[:100]))


def fuzz(fmt: Format, n_mutants: int, seed: int = 0, tmp: Path | None = None, keep: int = 5) -> Report:
    """Makes about n_mutants mutants of fmt's seeds, runs them on the device and the host, classifies them."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(tmp or scratch)
        for module in fmt.modules:
            from mpyml import build

            build.build(module, "x64")
        seeds = fmt.make_seeds(tmp)
        rng = random.Random(seed)
        found = mutants(fmt, seeds, n_mutants, rng)
        files = []
        for i, m in enumerate(found):
            p = tmp / ("m%06d" % i)
            p.write_bytes(m.data)
            files.append(str(p))
        dev = run_device(fmt, files, [m.seed for m in found], tmp, seeds)
    report = Report(fmt.name, tried=len(found))
    for m, d in zip(found, dev):
        h = host_outcome(fmt, m.data, seeds[m.seed])
        report.truncated += m.truncated
        problem = None
        if d.status == "loaded":
            report.loads += 1
            if m.truncated:
                report.truncated_loaded += 1
                problem = "truncated file loaded"
            if h.status in ("error", "crash"):
                report.silent_accepts += 1
                problem = "silent accept"
            elif h.status == "unfit":
                report.disagreements += 1
                problem = "device loaded a file beyond its capacities"
            elif not fmt.same(d.text, h.text):
                report.disagreements += 1
                problem = "predictions differ"
        elif d.status == "error":
            report.clean_errors += 1
            if h.status == "loaded":
                report.disagreements += 1
                problem = "host accepts what the device rejects"
        elif d.status == "hang":
            report.hangs += 1
            problem = "hang"
        else:
            report.crashes += 1
            problem = "device crash"
        if h.status == "crash" and problem is None:
            report.crashes += 1
            problem = "host reader crash"
        if problem:
            report.findings.append((problem, m.kind, "device: %s | host: %s" % (d.text[:160], h.text[:160]), m.data))
    report.seconds = time.monotonic() - t0
    return report


def format_table(reports: list) -> str:
    rows = [TABLE_HEADER] + [[str(v) for v in r.row()] for r in reports]
    return "\n".join("| " + " | ".join(row) + " |" + ("\n|" + " --- |" * len(row) if k == 0 else "")
                     for k, row in enumerate(rows))
