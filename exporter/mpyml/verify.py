"""Compares what the device predicts with scikit-learn and with mpyml's numpy reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import iir, linear, registry, trees
from .formats import linear as linear_format, mixture as mixture_format, neighbors as neighbors_format
from .formats import nets as nets_format, trees as trees_format

PROBA_TOLERANCE = 1e-6
SAMME_PROBA_TOLERANCE = 1e-5  # AdaBoost's softmax: float32 with the shared core's exp on the device
REGRESSION_RTOL = linear.FLOAT32_RTOL
ISOLATION_RTOL, ISOLATION_ATOL = 1e-5, 1e-6  # IsolationForest's score_samples and decision_function (float32 on the device)


@dataclass
class Report:
    name: str
    kind: str
    n_rows: int
    n_agree: int  # rows where the device's prediction matches scikit-learn's (within REGRESSION_RTOL for regressors)
    max_proba_error: float | None  # classifiers: largest |device - scikit-learn| probability
    matches_reference: bool  # device output bit-identical to StoredForest.predict_index / predict_proba (SAMME proba within 1e-5)
    file_bytes: int
    ram_bytes: int
    proba_tolerance: float = PROBA_TOLERANCE
    reference: str = "scikit-learn"  # what the device's predictions were compared with

    @property
    def ok(self) -> bool:
        proba_ok = self.max_proba_error is None or self.max_proba_error <= self.proba_tolerance
        return self.n_agree == self.n_rows and proba_ok and self.matches_reference

    def summary(self) -> str:
        proba = "" if self.max_proba_error is None else ", max |proba error| %.2g" % self.max_proba_error
        return "%s: %d/%d rows agree with %s%s, %s numpy reference; file %d B, model RAM %d B: %s" % (
            self.name, self.n_agree, self.n_rows, self.reference, proba,
            "matches" if self.matches_reference else "DIFFERS FROM", self.file_bytes, self.ram_bytes,
            "OK" if self.ok else "MISMATCH")


def regression_agrees(device: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|device - expected| <= 1e-5 relative to the value, and for values near 0 to 1% of the largest |expected|:
    the device sums the trees' values in float32, whose error follows the terms, so a mean near 0 of values
    near the largest is off by a few float32 steps of the largest (4.4e-6 on 0.41 where the largest is 313)."""
    scale = np.maximum(np.abs(expected), np.abs(expected).max(initial=0.0) * 1e-2)
    return np.abs(device.astype(np.float64) - expected) <= REGRESSION_RTOL * scale


def verify_trees(estimator, X, path, feature_dtype="auto", voting="soft", run=None, name=None) -> Report:
    """Exports a tree model (any the registry converts to a forest: trees, forests, Bagging of trees)
    to `path`, predicts X with `run(path, X, stored)` and compares with the estimator's predict (hard
    voting: with its trees' majority vote, hard_vote_predict; the vote shares are not compared)."""
    forest = registry.lookup(estimator, families=("trees",)).convert(estimator)
    stored = trees.lower(forest, dtype=registry.forest_feature_dtype(forest, feature_dtype), voting=voting)
    file_bytes = trees_format.save(stored, path)
    pred, proba = run(path, X, stored)
    X_sklearn = stored.cast_features(X).astype(np.float32)
    reference = "scikit-learn"
    if stored.kind == trees.CLASSIFIER:
        expected = estimator.predict(X_sklearn)
        max_error = float(np.abs(proba - estimator.predict_proba(X_sklearn)).max())
        if stored.voting == "hard":
            expected, reference = hard_vote_predict(estimator, X_sklearn)
            reference, max_error = "scikit-learn's " + reference, None
        n_agree = int(np.sum(stored.classes[pred] == expected))
        if stored.voting == "samme":
            same_proba = np.allclose(proba, stored.predict_proba(X), rtol=0, atol=SAMME_PROBA_TOLERANCE)
        else:
            same_proba = np.array_equal(proba, stored.predict_proba(X))
        same = np.array_equal(pred, stored.predict_index(X)) and same_proba
    else:
        n_agree = int(np.sum(regression_agrees(pred, estimator.predict(X_sklearn))))
        max_error = None
        same = np.array_equal(pred, stored.predict_index(X))
    tolerance = SAMME_PROBA_TOLERANCE if stored.voting == "samme" else PROBA_TOLERANCE
    return Report(name or type(estimator).__name__, stored.kind, len(X), n_agree, max_error, bool(same),
                  file_bytes, stored.ram_bytes(), tolerance, reference)


# ---------------------------------------------------------------- model files on the device, every family

# First bytes of each model file -> the device module that loads it.
FILE_MODULES = {"mpyml-trees,": "emltrees", "mpyml-neighbors,": "emlneighbors", "mpyml-linear,": "emllinear",
                "mpyml-mixture,": "emlmixture", "mpyml-iir,": "emliir", "MPYN": "emlcnn"}


class ModelFileError(ValueError):
    """The device refused the model file (its message, with the file line), or it is no model file."""


def file_module(path) -> str:
    """The device module that loads the model file at `path` (from its first bytes); ModelFileError
    for a file of no mpyml format; OSError when it cannot be read."""
    with open(path, "rb") as f:
        head = f.read(64)
    for prefix, module in FILE_MODULES.items():
        if head.startswith(prefix.encode()):
            return module
    raise ModelFileError("%s: not an mpyml model file (it starts with %r; model files start with one of %s)"
                         % (path, head[:16], ", ".join(p.rstrip(",") for p in FILE_MODULES)))


def host_load(path):
    """The stored model the host's reader makes of the file (each format has one reader)."""
    readers = {"emltrees": trees_format.load, "emlneighbors": neighbors_format.load, "emllinear": linear_format.load,
               "emlmixture": mixture_format.load, "emliir": iir.load, "emlcnn": nets_format.load}
    return readers[file_module(path)](path)


def _header_ints(path) -> dict:
    """`name,<integer>` records of a text model file's header (the capacities to give new() when the
    host's reader refuses the file, so that the device gives its own message)."""
    values = {}
    with open(path, "rb") as f:
        for _ in range(40):
            name, _, value = f.readline().decode("utf-8", "replace").strip().partition(",")
            if value.isdigit() and name not in values:
                values[name] = int(value)
    return values


def capacities(path, stored=None) -> dict:
    """The sizes to give the device module's new() for the model file (those of the host's reading of it;
    from the header when the host refuses the file)."""
    model = stored.model if isinstance(stored, linear.StoredPipeline) else stored
    if model is not None and hasattr(model, "n_trees"):
        return {"n_trees": model.n_trees, "n_nodes": model.n_nodes, "n_leaves": model.n_leaves}
    if model is not None and hasattr(model, "n_items"):
        return {"n_items": model.n_items, "n_features": model.n_features, "k": model.k}
    if isinstance(model, linear.StoredChain):
        return {"n_steps": len(model.steps), "n_values": model.n_values}
    if model is not None and hasattr(model, "n_components"):
        return {"n_features": model.n_features, "n_components": model.n_components}
    header = _header_ints(path)
    big = 1 << 15
    return {"n_trees": header.get("n_trees", big), "n_nodes": header.get("n_nodes", big),
            "n_leaves": header.get("n_leaves", big), "n_items": header.get("n_items", big),
            "n_features": header.get("n_features", 1), "k": header.get("k", 1),
            "n_steps": header.get("n_steps", 64), "n_values": header.get("n_values", big),
            "n_components": header.get("n_components", 1)}


# MicroPython code that loads the model file P into `m` (a filter for emliir).
_LOADERS = {
    "emltrees": "m = emltrees.new({n_trees}, {n_nodes}, {n_leaves})\nemltrees.load_model(m, P)",
    "emlneighbors": "m = emlneighbors.new({n_items}, {n_features}, {k})\nemlneighbors.load_model(m, P)",
    "emllinear": "m = emllinear.new({n_steps}, {n_values})\nemllinear.load_model(m, P)",
    "emlmixture": "m = emlmixture.new({n_features}, {n_components})\nemlmixture.load_model(m, P)",
    "emliir": "m = emliir.load(P)",
    "emlcnn": "m = emlcnn.new(emlcnn.arena_bytes(P))\nemlcnn.load_model(m, P)",
}
# What the check prints of the loaded model.
_ATTRIBUTES = {
    "emltrees": ("kind", "voting", "typecode", "n_features", "n_classes", "n_trees", "n_nodes", "n_leaves"),
    "emlneighbors": ("typecode", "n_input_features", "n_features", "n_items", "n_classes", "k", "metric", "weights",
                     "threshold"),
    "emllinear": ("kind", "n_features", "n_outputs", "n_steps"),
    "emlmixture": ("kind", "covariance_type", "n_features", "n_components", "threshold"),
    "emliir": ("n_stages", "typecode"),
    "emlcnn": ("dtype", "n_inputs", "n_outputs", "n_layers", "arena_needed", "weights_bytes"),
}
_CHECK_SCRIPT = """
import {module}
P = {path!r}
try:
{loader}
except Exception as e:
    print('MPYML-REFUSED %s: %s' % (type(e).__name__, e))
else:
    for name in {attributes!r}:
        print('MPYML-ATTR %s=%r' % (name, getattr(m, name)))
"""


BOARD_INPUT_BYTES = 8192


def device_runner(board=None, mpy=None):
    """run(script, files) -> stdout: the unix port (board None) or an emulated board (mpyml.boards), with the
    modules built into `mpy` (default build.MPY_OUT). `files`: {name on the device: local path}."""
    import shutil
    import tempfile
    from pathlib import Path

    from . import boards, device

    def run(script, files):
        if board is None:
            with tempfile.TemporaryDirectory() as tmp:
                for name, local in files.items():
                    shutil.copyfile(local, Path(tmp) / name)
                return device.run(script, cwd=tmp, mpy=mpy)
        modules = None
        if mpy is not None:
            modules = {p.name: p for p in device.module_dir(boards.BOARDS[board].arch, mpy).glob("*.mpy")}
        return boards.run(board, script, files, modules=modules, timeout=600)

    # A board's heap holds the module, the model and the rows of one run: predict_rows sends at most this many bytes of rows.
    run.input_bytes = None if board is None else BOARD_INPUT_BYTES
    return run


def check_file(path, run=None) -> dict:
    """Loads the model file with its device module (on the unix port unless `run` says otherwise, see
    device_runner) exactly as the device would; returns the loaded model's attributes, or raises
    ModelFileError with the device's message (`model file line N: ...`)."""
    import os

    module = file_module(path)
    try:
        stored = host_load(path)
    except Exception:  # the host's reader refuses it: the device must say why, in its own words
        stored = None
    loader = _LOADERS[module].format(**capacities(path, stored))
    name = "model" + os.path.splitext(str(path))[1]
    script = _CHECK_SCRIPT.format(module=module, path=name, loader="    " + loader.replace("\n", "\n    "),
                                  attributes=_ATTRIBUTES[module])
    out = (run or device_runner())(script, {name: path})
    attributes = {}
    for line in out.splitlines():
        if line.startswith("MPYML-REFUSED "):
            raise ModelFileError("%s: %s refuses it: %s" % (path, module, line[len("MPYML-REFUSED "):]))
        if line.startswith("MPYML-ATTR "):
            key, _, value = line[len("MPYML-ATTR "):].partition("=")
            attributes[key] = value.strip("'") if value.startswith("'") else value
    if stored is None:  # the device loads what the host's reader refuses: both must be fixed, say so
        try:
            host_load(path)
        except Exception as error:
            raise ModelFileError("%s: %s loads it but mpyml's reader refuses it: %s" % (path, module, error)) from None
    attributes["module"] = module
    return attributes


# ---------------------------------------------------------------- every family: export, run on the device, compare

# Per row, MicroPython code that sets p (the device's predict, or None) and v (a list of floats: its
# continuous output, compared with the library's), after `setup`; x is the row.
_ROWS = {
    "emltrees": ("o = array.array('f', bytes(4 * m.n_classes)) if m.kind == 'classifier' else None",
                 "p = m.predict(x)\n    v = m.predict_proba(x, o) if o is not None else ()"),
    "emlneighbors": ("d = array.array('f', bytes(4 * m.k))\ni = array.array('i', bytes(4 * m.k))",
                     "m.kneighbors(x, d, i)\n    p = m.predict(x) if m.n_classes else None\n"
                     "    v = list(d) + list(i)"),
    "emllinear": ("o = array.array('f', bytes(4 * m.width))",
                  "p = m.predict(x) if m.kind != 'transformer' else None\n    v = m.transform(x, o)"),
    "emlmixture": ("o = array.array('f', bytes(4 * (m.n_components if m.kind in ('naive_bayes', 'kmeans') else 1)))\n"
                   "method = {'mixture': m.score_samples, 'naive_bayes': m.predict_proba, 'envelope': m.decision_function,"
                   " 'kmeans': m.transform}[m.kind]",
                   "p = m.predict(x)\n    v = method(x, o)"),
    "emlcnn": ("o = array.array('f', bytes(4 * m.n_outputs))", "p = None\n    v = m.predict(x, o)"),
}
# IsolationForest (an emltrees classifier without predict_proba): v is decision_function then score_samples.
_ISOLATION_ROWS = ("o = array.array('f', bytes(4))\ns = array.array('f', bytes(4))",
                   "p = m.predict(x)\n    v = (m.decision_function(x, o)[0], m.score_samples(x, s)[0])")

_PREDICT_ROWS_SCRIPT = """
import array, {module}
P = {path!r}
{loader}
{setup}
n = {n_values}
with open('x.bin', 'rb') as f:
    X = array.array({typecode!r}, f.read())  # bytes: copied as the array's raw values
for r in range({n_rows}):
    x = X[r * n:(r + 1) * n]
    {row}
    print('R', p, *v)
"""


def _is_isolation(stored) -> bool:
    model = stored.model if isinstance(stored, linear.StoredPipeline) else stored
    return getattr(getattr(model, "boost", None), "link", None) == "isolation"


def predict_rows(path, X: np.ndarray, run=None, chunk: int = 2000, progress=None):
    """Loads the model file with its device module and gives every row of X (int16 or float32, one row per
    call) to it: (p, v) with p the device's predict per row (None where it has none) and v its
    continuous output (probabilities, scores, distances then neighbour indices, net outputs) per row.
    Rows go in chunks of `chunk`, fewer where the runner has an input budget (run.input_bytes: an emulated
    board's heap), with a tqdm progress bar over them unless progress is False."""
    import os
    import tempfile
    from pathlib import Path

    from tqdm import tqdm

    module = file_module(path)
    try:
        stored = host_load(path)
    except Exception:
        stored = None
    loader = _LOADERS[module].format(**capacities(path, stored))
    setup, row = _ISOLATION_ROWS if _is_isolation(stored) else _ROWS[module]
    run = run or device_runner()
    X = np.ascontiguousarray(X.reshape(len(X), -1))
    budget = getattr(run, "input_bytes", None)
    if budget:
        chunk = max(1, min(chunk, budget // max(1, X[:1].nbytes)))
    name = "model" + os.path.splitext(str(path))[1]
    preds, values = [], []
    starts = range(0, len(X), chunk)
    for start in tqdm(starts, desc="mpyml verify", unit="chunk", disable=None if progress is None else not progress,
                      total=len(starts)):
        part = X[start:start + chunk]
        with tempfile.TemporaryDirectory() as tmp:
            x_path = Path(tmp) / "x.bin"
            x_path.write_bytes(part.astype(part.dtype.newbyteorder("<")).tobytes())
            script = _PREDICT_ROWS_SCRIPT.format(
                module=module, path=name, loader=loader, setup=setup, row=row, n_rows=len(part),
                n_values=part.shape[1], typecode="h" if part.dtype == np.int16 else "f", itemsize=part.itemsize)
            out = run(script, {name: path, "x.bin": x_path})
        for line in out.splitlines():
            if line.startswith("R "):
                fields = line.split()[1:]
                preds.append(None if fields[0] == "None" else float(fields[0]))
                values.append([float(value) for value in fields[1:]])
    return preds, np.array(values, dtype=np.float64)


@dataclass
class FamilyReport:
    """What `mpyml verify` found for one model: device predictions against the library's."""
    name: str
    module: str
    n_rows: int
    n_agree: int
    agree_what: str  # what was compared row by row, e.g. "predict" or "neighbour indices"
    worst_error: float | None  # largest |device - library| of the continuous output
    error_what: str  # what that output is
    tolerance: float | None  # worst_error must be at most this (None: reported only)
    file_bytes: int
    labels: tuple | None = None  # (library's labels, device's labels) per row, for a confusion matrix
    exact: bool = True  # False for int8 nets: quantized, so agreement is reported, not required
    unit: str = "rows"
    note: str | None = None  # information printed after the comparison, not part of the verdict

    @property
    def ok(self) -> bool:
        close = self.tolerance is None or self.worst_error is None or self.worst_error <= self.tolerance
        return not self.exact or (self.n_agree == self.n_rows and close)

    def summary(self) -> str:
        error = "" if self.worst_error is None else ", worst error %.3g (%s)" % (self.worst_error, self.error_what)
        verdict = "OK" if self.ok else "MISMATCH"
        if not self.exact:
            verdict += " (int8: the quantized net's agreement is reported, not required)"
        note = "" if self.note is None else "; " + self.note
        return "%s (%s): %d/%d %s agree with the library (%s)%s%s; file %d B: %s" % (
            self.name, self.module, self.n_agree, self.n_rows, self.unit, self.agree_what, error, note,
            self.file_bytes, verdict)


def _final(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _library_input(estimator, X_device, stored):
    """The rows the library predicts from: exactly the values the device reads; a DataFrame with the fitted
    feature names when the estimator has them (XGBoost refuses unnamed rows from a model fitted on a DataFrame)."""
    dtype = getattr(stored, "input_dtype", None) or "float64"
    X = X_device.astype(dtype)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and X.ndim == 2 and X.shape[1] == len(names):
        import pandas as pd

        return pd.DataFrame(X, columns=list(names))
    return X


def _device_rows(stored, X):
    """X as the device reads it: int16 rows for int16 models, else float32."""
    model = stored.model if isinstance(stored, linear.StoredPipeline) else stored
    if getattr(model, "dtype", None) == "int16":
        return model.cast_features(X).astype(np.int16)
    return np.asarray(X, dtype=np.float32)


def _close_to_scale(device, expected, rtol=linear.FLOAT32_RTOL) -> np.ndarray:
    """|device - expected| <= rtol * the largest |expected|: float32 sums of products (linear models, nets)
    err relative to their terms, not to a result near 0."""
    device, expected = np.asarray(device, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return np.abs(device.reshape(expected.shape) - expected) <= rtol * max(float(np.abs(expected).max(initial=0)), 1e-30)


def _worst_relative(device, expected) -> float:
    """The largest |device - expected| relative to the scale regression_agrees uses (REGRESSION_RTOL bounds it)."""
    device, expected = np.asarray(device, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.maximum(np.abs(expected), np.abs(expected).max(initial=0.0) * 1e-3)
    return float((np.abs(device - expected) / np.maximum(scale, 1e-300)).max(initial=0.0))


def _worst_of_largest(device, expected) -> float:
    """The largest |device - expected| relative to the largest |expected| (_close_to_scale's bound)."""
    expected = np.asarray(expected, dtype=np.float64)
    return _worst(device, expected) / max(float(np.abs(expected).max(initial=0)), 1e-30)


def _worst(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a.reshape(b.shape) - b).max(initial=0.0))


def verify_file(estimator, rows, path, run=None, name=None, progress=None, **options) -> FamilyReport:
    """Exports any supported estimator (or a Keras model) to `path` with `options` (those of mpyml.export),
    predicts every row of `rows` on the device (run: device_runner; default the unix port) and compares
    with the estimator's own methods (predict, and predict_proba, decision_function, kneighbors,
    score_samples, transform or the net's output for the worst error)."""
    import os

    import mpyml

    stored = mpyml.export(estimator, path, **options)
    module = file_module(path)
    _check_rows(rows, stored)
    X_device = _device_rows(stored, rows)
    X_lib = _library_input(estimator, X_device, stored)
    preds, values = predict_rows(path, X_device, run=run, progress=progress)
    final, n = _final(estimator), len(X_device)
    label = name or type(estimator).__name__
    size = os.path.getsize(path)
    compare = {"emltrees": _compare_classifier_or_regressor, "emllinear": _compare_linear,
               "emlneighbors": _compare_neighbors, "emlmixture": _compare_mixture, "emlcnn": _compare_net}[module]
    return compare(estimator, final, stored, X_lib, preds, values, label, module, size, n)


def _check_rows(rows, stored) -> None:
    """ValueError naming the problem when `rows` are not a 2-D (or, for nets, (n_rows, *input_shape)) array of at
    least one row of the model's input width: said here rather than by the device's traceback."""
    rows = np.asarray(rows)
    width = getattr(stored, "n_inputs", None) or stored.n_features
    if rows.ndim < 2 or len(rows) == 0:
        raise ValueError("X: expected rows of %d features, shape (n_rows, %d) with n_rows >= 1; got shape %s"
                         % (width, width, rows.shape))
    got = int(np.prod(rows.shape[1:]))
    if got != width:
        raise ValueError("X: the model takes %d features per row, X has %d (shape %s)" % (width, got, rows.shape))


def _classes(stored):
    model = stored.model if isinstance(stored, linear.StoredPipeline) else stored
    return None if getattr(model, "classes", None) is None else np.asarray(model.classes)


def hard_vote_predict(estimator, X) -> tuple[np.ndarray, str]:
    """What a tree classifier exported with voting='hard' predicts, from scikit-learn's own fitted trees: each
    tree of `estimator` (`estimators_`, on its `estimators_features_` columns for Bagging; a lone decision tree
    is its own vote) predicts a class, and the class with the most votes wins, the lowest class index on ties
    (as numpy.argmax, the rule docs/formats.md gives for hard voting). A Pipeline's steps transform X first.

    X: (n_rows, n_features) as the estimator takes it. Returns (labels of shape (n_rows,), from the
    estimator's classes_; a description of this reference for reports)."""
    final = _final(estimator)
    if hasattr(estimator, "steps"):
        X = estimator[:-1].transform(X)
    X = np.asarray(X)  # the trees were fitted on arrays (the ensemble strips a DataFrame's names)
    trees = getattr(final, "estimators_", None)
    if trees is None:
        return final.predict(X), "the tree's predict (hard voting of one tree)"
    columns = getattr(final, "estimators_features_", None) or [slice(None)] * len(trees)
    votes = np.zeros((len(X), len(final.classes_)), dtype=np.int64)
    rows = np.arange(len(X))
    for tree, features in zip(trees, columns):
        # The ensembles fit their trees on class indices (y encoded by np.unique), so a tree predicts an index.
        votes[rows, tree.predict(X[:, features]).astype(np.int64)] += 1
    return final.classes_[np.argmax(votes, axis=1)], "majority vote of the %d trees' predict (hard voting)" % len(trees)


def _compare_classifier_or_regressor(estimator, final, stored, X, preds, values, label, module, size, n):
    if _is_isolation(stored):
        return _compare_isolation(estimator, stored, X, preds, values, label, module, size, n)
    if hasattr(final, "predict_proba"):
        classes = _classes(stored)
        device = classes[np.array(preds, dtype=np.int64)]
        expected, reference, note = estimator.predict(X), "predict", None
        worst, proba_what = _worst(values, estimator.predict_proba(X)), "predict_proba"
        tolerance = SAMME_PROBA_TOLERANCE if type(final).__name__ == "AdaBoostClassifier" else PROBA_TOLERANCE
        if getattr(getattr(stored, "model", stored), "voting", None) == "hard":
            # Hard voting is not scikit-learn's predict (soft voting for forests): compared with the trees' own
            # majority vote; its probabilities are vote shares, not scikit-learn's (reported only).
            note = "%d/%d rows agree with %s.predict (soft voting; information)" % (
                int(np.sum(device == expected)), n, type(final).__name__)
            expected, reference = hard_vote_predict(estimator, X)
            reference, proba_what = "reference: " + reference, "vote shares against predict_proba, reported only"
            tolerance = None
        return FamilyReport(label, module, n, int(np.sum(device == expected)), reference, worst, proba_what,
                            tolerance, size, (expected, device), note=note)
    device, expected = np.array(preds, dtype=np.float64), estimator.predict(X)
    return FamilyReport(label, module, n, int(np.sum(regression_agrees(device, expected))),
                        "predict within %g relative" % REGRESSION_RTOL, _worst_relative(device, expected),
                        "predict, relative", None, size)


def _compare_isolation(estimator, stored, X, preds, values, label, module, size, n):
    """IsolationForest: predict (-1 / 1) equal to scikit-learn's, score_samples within 1e-5 relative and
    decision_function (score_samples - offset_, which cancels near the boundary) within 1e-5 relative or
    1e-6 absolute, row by row."""
    device = _classes(stored)[np.array(preds, dtype=np.int64)]
    expected = estimator.predict(X)
    decision, score = estimator.decision_function(X), estimator.score_samples(X)
    close_score = np.abs(values[:, 1] - score) <= ISOLATION_RTOL * np.abs(score)
    close_decision = np.abs(values[:, 0] - decision) <= ISOLATION_RTOL * np.abs(decision) + ISOLATION_ATOL
    agree = (device == expected) & close_score & close_decision
    return FamilyReport(label, module, n, int(np.sum(agree)),
                        "predict; score_samples within %g relative, decision_function within %g relative + %g "
                        "absolute" % (ISOLATION_RTOL, ISOLATION_RTOL, ISOLATION_ATOL),
                        _worst(values[:, 0], decision), "decision_function, absolute", None, size, (expected, device))


def _compare_linear(estimator, final, stored, X, preds, values, label, module, size, n):
    if stored.kind == "transformer":
        expected = estimator.transform(X)
        close = np.all(_close_to_scale(values, expected), axis=1)
        return FamilyReport(label, module, n, int(np.sum(close)), "transform within 1e-5 of its largest value",
                            _worst_of_largest(values, expected), "transform, of its largest value", None, size)
    if stored.kind == "classifier":
        device = np.asarray(stored.classes)[np.array(preds, dtype=np.int64)]
        expected = estimator.predict(X)
        decision = estimator.decision_function(X)
        return FamilyReport(label, module, n, int(np.sum(device == expected)), "predict",
                            _worst(values, decision.reshape(len(X), -1)), "decision_function", None, size,
                            (expected, device))
    device, expected = np.array(preds, dtype=np.float64), estimator.predict(X)
    return FamilyReport(label, module, n, int(np.sum(_close_to_scale(device, expected))),
                        "predict within 1e-5 of its largest value", _worst_of_largest(device, expected),
                        "predict, of its largest value", None, size)


def _compare_neighbors(estimator, final, stored, X, preds, values, label, module, size, n):
    model = getattr(stored, "model", stored)
    k = model.k
    Z = estimator[:-1].transform(X) if hasattr(estimator, "steps") else X
    distances, indices = final.kneighbors(Z, n_neighbors=k)
    worst = _worst(values[:, :k], distances)
    if model.n_classes:
        device = np.asarray(model.classes)[np.array(preds, dtype=np.int64)]
        expected = estimator.predict(X)
        return FamilyReport(label, module, n, int(np.sum(device == expected)), "predict", worst,
                            "neighbour distance", None, size, (expected, device))
    # Items at equal distances may come in another order: a row agrees when the device's neighbours are
    # at scikit-learn's k distances (float64, within 1e-6 of the k-th).
    from sklearn.metrics import pairwise_distances

    every = pairwise_distances(Z, final._fit_X, metric=final.effective_metric_, **final.effective_metric_params_)
    chosen = np.sort(np.take_along_axis(every, values[:, k:].astype(np.int64), axis=1), axis=1)
    scale = np.maximum(distances.max(axis=1, keepdims=True), 1e-12)
    same = np.all(np.abs(chosen - distances) <= 1e-6 * scale, axis=1)
    return FamilyReport(label, module, n, int(np.sum(same)), "neighbours at scikit-learn's distances", worst,
                        "neighbour distance", None, size)


def _compare_mixture(estimator, final, stored, X, preds, values, label, module, size, n):
    device = np.array(preds, dtype=np.int64)
    if stored.kind == "naive_bayes":
        device = np.asarray(stored.classes)[device]
    expected = estimator.predict(X)
    method = {"mixture": "score_samples", "naive_bayes": "predict_proba", "envelope": "decision_function",
              "kmeans": "transform"}[stored.kind]
    reference = getattr(estimator, method)(X).reshape(len(X), -1)
    return FamilyReport(label, module, n, int(np.sum(device == expected)), "predict", _worst(values, reference),
                        method, None, size, (expected, device))


def _compare_net(estimator, final, stored, X, preds, values, label, module, size, n):
    import dataclasses

    report = _compare_net_outputs(estimator, stored, X, values, label, module, size, n)
    return dataclasses.replace(report, exact=stored.dtype == "float32")


def _compare_net_outputs(estimator, stored, X, values, label, module, size, n):
    if hasattr(estimator, "predict_proba"):  # MLPClassifier
        reference = estimator.predict_proba(X)
        if reference.shape[1] == 2 and values.shape[1] == 1:
            reference = reference[:, 1:]
        expected = estimator.predict(X)
        index = (values[:, 0] > 0.5).astype(np.int64) if values.shape[1] == 1 else np.argmax(values, axis=1)
        device = estimator.classes_[index]
        return FamilyReport(label, module, n, int(np.sum(device == expected)), "predict", _worst(values, reference),
                            "output", None, size, (expected, device))
    if hasattr(estimator, "layers"):  # Keras
        reference = np.asarray(estimator.predict(X.reshape((len(X),) + tuple(stored.input_shape)), verbose=0))
        reference = reference.reshape(len(X), -1)
        if stored.output_activation == "softmax":
            expected, device = np.argmax(reference, axis=1), np.argmax(values, axis=1)
            return FamilyReport(label, module, n, int(np.sum(device == expected)), "argmax", _worst(values, reference),
                                "output", None, size, (expected, device))
    else:  # MLPRegressor
        reference = estimator.predict(X).reshape(len(X), -1)
    close = np.all(_close_to_scale(values, reference), axis=1)
    return FamilyReport(label, module, n, int(np.sum(close)), "output within 1e-5 of its largest value",
                        _worst_of_largest(values, reference), "output, of its largest value", None, size)


def verify_iir(sos, x, path, run=None, name="IIR filter") -> FamilyReport:
    """Saves the filter (scipy's float sos, or int16 Q15 coefficients from iir.quantize_q15) to `path`, filters
    the 1-D signal x on the device in one run() and compares: float32 filters sample for sample with
    scipy.signal.sosfilt on the float32 sos and signal (the device's arithmetic), Q15 ones with
    iir.sosfilt_q15; the worst error is against scipy's float64 filter, relative to the signal's peak."""
    import os
    import tempfile
    from pathlib import Path

    from scipy import signal

    sos = np.asarray(sos)
    iir.save(sos, path)
    q15 = np.issubdtype(sos.dtype, np.integer)
    x = np.asarray(x).reshape(-1)
    x_device = x.astype(np.int16) if q15 else x.astype(np.float32)
    name_on_device = "model" + os.path.splitext(str(path))[1]
    script = ("import array, emliir\nm = emliir.load(%r)\n"
              "with open('x.bin', 'rb') as f:\n    x = array.array(%r, f.read())\nm.run(x)\nprint('R', *x)\n"
              % (name_on_device, "h" if q15 else "f"))
    with tempfile.TemporaryDirectory() as tmp:
        x_path = Path(tmp) / "x.bin"
        x_path.write_bytes(x_device.astype(x_device.dtype.newbyteorder("<")).tobytes())
        out = (run or device_runner())(script, {name_on_device: path, "x.bin": x_path})
    line = next(line for line in out.splitlines() if line.startswith("R"))
    y = np.array([float(v) for v in line.split()[1:]], dtype=np.float64)
    if q15:
        expected = iir.sosfilt_q15(sos, x_device)[0]
        exact = signal.sosfilt(iir.q15_real(sos), x_device.astype(np.float64))
        what = "sample equals mpyml.iir.sosfilt_q15"
    else:
        expected = signal.sosfilt(sos.astype(np.float32), x_device)
        exact = signal.sosfilt(sos.astype(np.float64), x_device.astype(np.float64))
        what = "sample equals scipy sosfilt in float32"
    peak = max(float(np.abs(x_device).max(initial=0)), 1e-30)
    return FamilyReport(name, "emliir", len(y), int(np.sum(y == np.asarray(expected, dtype=np.float64))), what,
                        float(np.abs(y - exact).max(initial=0)) / peak, "against scipy's float64 filter, of the peak",
                        None, os.path.getsize(path), unit="samples")


def confusion_matrix_png(report: FamilyReport, path, title=None) -> None:
    """Writes the confusion matrix of the device's labels against the library's (or the true labels the
    caller put in report.labels) as a PNG; needs matplotlib (pip install 'mpyml[plot]')."""
    expected, device = report.labels
    plot_confusion_matrix(expected, device, path, "device (%s)" % report.module, "library" if title is None else title,
                          report.name)


def plot_confusion_matrix(expected, predicted, path, xlabel: str, ylabel: str, title: str, labels=None) -> None:
    """Writes the confusion matrix of `predicted` against `expected` (1-D arrays of labels, or of indices
    into `labels`, the class names to show) as a PNG; needs matplotlib (pip install 'mpyml[plot]')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay.from_predictions(
        expected, predicted, colorbar=False, labels=None if labels is None else range(len(labels)),
        display_labels=labels)
    display.ax_.set_xlabel(xlabel)
    display.ax_.set_ylabel(ylabel)
    display.ax_.set_title(title)
    display.figure_.tight_layout()
    display.figure_.savefig(path, dpi=100)
    plt.close(display.figure_)
