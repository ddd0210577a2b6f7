"""The portable C core (natmods/common/mpyml_trees.h, mpyml_common.h) built for the host.

tests/c/trees_driver.c is compiled with ASan and UBSan and fed forests in a small
line format of its own (described at the top of the driver). The tests check
that the core predicts bit for bit what StoredForest's numpy mirror predicts,
that it rejects every corrupt record with the right error code, that random
garbage never makes it crash, and its integer / hex / float helpers.
"""

from __future__ import annotations

import math
import os
import re
import struct
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from c_errors import error_table
from mpyml import treesfile
from mpyml.trees import StoredForest, forest_from_sklearn, lower

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER_SOURCE = ROOT / "tests" / "c" / "trees_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(COMMON)]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}

KINDS = {"soft": 1, "hard": 2, None: 3}
DTYPES = {"int16": 1, "float32": 2}
INT32_MIN, INT32_MAX, UINT32_MAX = -(2**31), 2**31 - 1, 2**32 - 1
MAX_NODES = 2**24


ERR = error_table()
CODE = {name: code for name, (code, _) in ERR.items()}


# ---------------------------------------------------------------- building and running


def _compile(out_dir: Path, extra: list[str]) -> Path:
    exe = out_dir / "trees_driver"
    proc = subprocess.run(["gcc", *CFLAGS, *extra, "-o", str(exe), str(DRIVER_SOURCE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, "gcc failed:\n" + proc.stdout + proc.stderr
    return exe


@pytest.fixture(scope="session")
def driver(tmp_path_factory) -> Path:
    """The driver built with CFLAGS alone (no optimisation)."""
    return _compile(tmp_path_factory.mktemp("c_core_O0"), [])


@pytest.fixture(scope="session")
def driver_o2(tmp_path_factory) -> Path:
    """The same with -O2: other warnings, and undefined behaviour that only optimisation exposes."""
    return _compile(tmp_path_factory.mktemp("c_core_O2"), ["-O2"])


def run(exe: Path, text: str | bytes, *args: str) -> subprocess.CompletedProcess:
    data = text if isinstance(text, bytes) else text.encode()
    env = dict(os.environ, **SANITIZER_ENV)
    proc = subprocess.run([str(exe), *args], input=data, capture_output=True, timeout=120, env=env)
    stderr = proc.stderr.decode(errors="replace")
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr[-4000:]
    assert proc.returncode != 2, "the test sent input the driver cannot read:\n" + stderr[-2000:]
    proc.out = proc.stdout.decode().splitlines()
    return proc


def bits32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32)


def hex32(value) -> str:
    return "%08x" % int(bits32(value)[0])


def f32(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


# ---------------------------------------------------------------- StoredForest -> driver input


def row_text(dtype: str, row) -> str:
    if dtype == "float32":
        return "row " + " ".join("%08x" % b for b in bits32(row))
    return "row " + " ".join(str(int(v)) for v in row)


def forest_lines(stored: StoredForest, rows) -> list[str]:
    """Driver records of `stored`, with roots and nodes taken from its model file text.

    The node records (feature, threshold text, relative children) are exactly
    what treesfile writes, so the relative child offsets come from the writer.
    """
    text = treesfile.dumps(stored).splitlines()
    t, n, l = text.index("trees"), text.index("nodes"), text.index("leaves")
    assert n - t - 1 == stored.n_trees and l - n - 1 == stored.n_nodes
    shape = (KINDS[stored.voting], DTYPES[stored.dtype], stored.n_features, stored.n_classes,
             stored.n_trees, stored.n_nodes, stored.n_leaves)
    lines = ["forest %d %d %d %d %d %d %d " % shape + hex32(stored.tree_weight)]
    lines += ["tree " + root for root in text[t + 1:n]]
    lines += ["node " + record.replace(",", " ") for record in text[n + 1:l]]
    lines += ["leaf " + " ".join("%08x" % b for b in bits32(leaf)) for leaf in stored.leaf_values()]
    lines.append("done")
    lines += [row_text(stored.dtype, row) for row in rows]
    lines.append("end")
    return lines


def split_outputs(out: list[str]) -> list[list[str]]:
    """Driver output per forest (each ends with 'end')."""
    blocks, block = [], []
    for line in out:
        if line == "end":
            blocks.append(block)
            block = []
        else:
            block.append(line)
    assert not block, "output after the last 'end': %r" % block[:5]
    return blocks


def assert_predictions(stored: StoredForest, rows: np.ndarray, lines: list[str], what: str = ""):
    """The driver's per-row lines match StoredForest.predict / predict_proba bit for bit."""
    assert len(lines) == len(rows), what
    with np.errstate(over="ignore", invalid="ignore"):
        _assert_predictions(stored, rows, lines, what)


def _assert_predictions(stored: StoredForest, rows: np.ndarray, lines: list[str], what: str):
    if stored.kind == "regressor":
        got = np.array([int(line, 16) for line in lines], dtype=np.uint32)
        want = bits32(stored.predict(rows))
        bad = np.flatnonzero(got != want)
        assert not len(bad), "%s: row %s: C %08x, numpy %08x" % (what, rows[bad[0]], got[bad[0]], want[bad[0]])
        return
    fields = [line.split() for line in lines]
    got_class = np.array([int(f[0]) for f in fields], dtype=np.int64)
    got_proba = np.array([[int(v, 16) for v in f[1:]] for f in fields], dtype=np.uint32).reshape(len(rows), -1)
    want_class = stored.predict(rows)
    want_proba = stored.predict_proba(rows).view(np.uint32)
    bad = np.flatnonzero((got_class != want_class) | np.any(got_proba != want_proba, axis=1))
    assert not len(bad), "%s: row %s: C %s, numpy %d %s" % (
        what, rows[bad[0]], lines[bad[0]], want_class[bad[0]], ["%08x" % b for b in want_proba[bad[0]]])


def check_parity(exe: Path, cases: list[tuple[StoredForest, np.ndarray]]):
    lines = []
    for stored, rows in cases:
        lines += forest_lines(stored, rows)
    proc = run(exe, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.out[-3:]
    blocks = split_outputs(proc.out)
    assert len(blocks) == len(cases)
    for (stored, rows), block in zip(cases, blocks):
        what = "%s %s %s" % (stored.kind, stored.voting, stored.dtype)
        assert block[0] == "bytes %d" % stored.ram_bytes(), what
        assert block[1] == "ready", (what, block[:3])
        assert_predictions(stored, rows, block[2:], what)


# ---------------------------------------------------------------- parity with StoredForest


def cast_rows(X, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.round(np.asarray(X, dtype=np.float64)), -32768, 32767).astype(np.int64)
    return np.asarray(X, dtype=np.float32)


def probe_rows(stored: StoredForest, X) -> np.ndarray:
    """The data rows, then rows with one feature set to each node's stored threshold and its
    neighbours (float32: np.nextafter either way; int16: t - 1 and t + 1), then extreme rows."""
    X = cast_rows(X, stored.dtype)
    nodes = np.arange(stored.n_nodes)
    base = X[nodes % len(X)]
    t = stored.threshold
    if stored.dtype == "float32":
        t = t.astype(np.float32)
        values = [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(-np.inf))]
        specials = [np.inf, -np.inf, np.nan, 0.0, -0.0, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45]
    else:
        values = [t, np.clip(t - 1, -32768, None), np.clip(t + 1, None, 32767)]
        specials = [-32768, 32767, 0, -1, 1]
    probes = [X]
    for v in values:
        rows = base.copy()
        rows[nodes, stored.feature] = v
        probes.append(rows)
    probes.append(np.repeat(np.array(specials, dtype=X.dtype)[:, None], stored.n_features, axis=1))
    return np.concatenate(probes)


SEED = 20240611


@lru_cache(maxsize=None)
def dataset(name: str, dtype: str):
    """(X, y) of a classification ('*_cls') or regression ('*_reg') dataset, made for the dtype:
    int16 datasets hold whole numbers (the random ones partly beyond int16, so that some
    thresholds send every int16 one way and the exporter drops those nodes)."""
    from sklearn.datasets import load_iris, load_wine

    rng = np.random.default_rng(SEED + len(name))
    base, task = name.rsplit("_", 1)
    if base in ("iris", "wine"):
        X, y = (load_iris if base == "iris" else load_wine)(return_X_y=True)
        if task == "reg":  # the last feature from the others
            X, y = X[:, :-1], X[:, -1]
        if dtype == "int16":
            X = np.round(X * 10)
        return X, y
    n = 300
    if dtype == "int16":
        X = np.column_stack([rng.integers(-60000, 60000, n), rng.integers(-50, 50, n),
                             rng.integers(-32768, 32768, n), rng.integers(0, 4, n), rng.integers(-3, 3, n)])
        X = X.astype(np.float64)
    else:
        scales = 10.0 ** rng.integers(-20, 20, 5)
        X = rng.normal(size=(n, 5)) * scales
        X[:, 3] = np.round(X[:, 3] * 4 / scales[3])  # many ties
    Z = X / np.abs(X).max(axis=0)
    signal = Z[:, 0] + 0.5 * Z[:, 1] - Z[:, 2] + 0.3 * Z[:, 3] + 0.1 * rng.normal(size=n)
    if task == "cls":
        return X, np.digitize(signal, np.quantile(signal, [0.3, 0.55, 0.8]))
    return X, signal * 1000.0


def make_estimator(model: str, task: str):
    from sklearn import ensemble, tree

    cls = task == "cls"
    if model == "tree":
        return (tree.DecisionTreeClassifier if cls else tree.DecisionTreeRegressor)(max_depth=7, random_state=0)
    if model == "forest":
        return (ensemble.RandomForestClassifier if cls else ensemble.RandomForestRegressor)(
            n_estimators=6, min_samples_leaf=2, random_state=1)
    return (ensemble.ExtraTreesClassifier if cls else ensemble.ExtraTreesRegressor)(n_estimators=6, random_state=2)


def fitted(data: str, model: str, dtype: str):
    X, y = dataset(data, dtype)
    est = make_estimator(model, data.rsplit("_", 1)[1])
    # Random sample weights for the random forests: fractional leaf counts, so soft-vote
    # leaves take the exporter's 2**23-scaled branch.
    weight = np.random.default_rng(SEED).uniform(0.5, 2.0, len(X)) if model == "forest" else None
    return est.fit(X, y, sample_weight=weight), X


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", ["tree", "forest", "extra"])
@pytest.mark.parametrize("data", ["iris_cls", "wine_cls", "random_cls"])
def test_parity_classifier(driver, data, model, dtype):
    est, X = fitted(data, model, dtype)
    forest = forest_from_sklearn(est)
    soft, hard = lower(forest, dtype, "soft"), lower(forest, dtype, "hard")
    rows = probe_rows(soft, X)
    check_parity(driver, [(soft, rows), (hard, rows)])


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", ["tree", "forest", "extra"])
@pytest.mark.parametrize("data", ["iris_reg", "wine_reg", "random_reg"])
def test_parity_regressor(driver, data, model, dtype):
    est, X = fitted(data, model, dtype)
    stored = lower(forest_from_sklearn(est), dtype)
    check_parity(driver, [(stored, probe_rows(stored, X))])


def test_parity_degenerate_forests(driver):
    """Forests without decision nodes: single-leaf trees, and int16 trees whose every
    threshold lies beyond int16 (the exporter removes those nodes)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    cases = []
    one_class = DecisionTreeClassifier().fit(X, np.zeros(10))
    constant = DecisionTreeRegressor().fit(X, np.full(10, 2.5))
    beyond = np.column_stack([np.r_[np.full(5, 40000.0), np.full(5, 50000.0)], np.zeros(10)])
    far = RandomForestClassifier(n_estimators=3, random_state=0).fit(beyond, np.r_[np.zeros(5), np.ones(5)])
    for est in (one_class, constant, far):
        forest = forest_from_sklearn(est)
        for dtype in ("int16", "float32") if est is not far else ("int16",):
            for voting in ("soft", "hard") if forest.kind == "classifier" else ("soft",):
                stored = lower(forest, dtype, voting)
                assert stored.n_nodes == 0
                cases.append((stored, probe_rows(stored, np.clip(X, -32768, 32767))))
    check_parity(driver, cases)


def test_parity_offset_and_leaf_limits(driver):
    """The largest child offset (32767), a child that is the last node, and leaf 32767
    (child and root reference -32768, the int16 minimum)."""
    n_nodes, n_leaves = 32770, 32768
    feature = np.zeros(n_nodes, dtype=np.int64)
    threshold = np.zeros(n_nodes, dtype=np.int64)
    left = -(np.arange(n_nodes) % 100 + 1)
    right = -(np.arange(n_nodes) % 7 + 1)
    # tree 0: node 0 -> node 1 (x0 <= 0) or node 32767 (x0 > 0); node 32767 -> leaf 32767 (x1 <= 5)
    # or node 32769, the last one (x1 > 5); node 32769 -> leaf 1 or leaf 32766 on x1 <= 9.
    left[0], right[0] = 1, 32767
    feature[32767], threshold[32767], left[32767], right[32767] = 1, 5, -32768, 32769
    feature[32769], threshold[32769], left[32769], right[32769] = 1, 9, -2, -32767
    stored = StoredForest(kind="regressor", voting=None, dtype="int16", n_features=2, n_classes=0,
                          roots=np.array([0, -32768, 32767]), feature=feature, threshold=threshold,
                          left=left, right=right, leaves=np.arange(n_leaves, dtype=np.float64)[:, None] * 0.5)
    rows = np.array([[x0, x1] for x0 in (-1, 0, 1, 32767) for x1 in (-32768, 5, 6, 9, 10, 32767)])
    assert set(stored.leaf_indices(rows)[:, 0]) >= {32767, 1, 32766}
    check_parity(driver, [(stored, rows)])


# ---------------------------------------------------------------- validation of hand-made corrupt forests


class Bad(str):
    """Marks the record a case expects the driver to reject."""


def records(shape=(1, 1, 3, 3, 2, 3, 4), weight=0.5, trees=None, nodes=None, leaves=None, rows=()):
    """A soft-vote int16 forest of 2 trees, 3 nodes, 4 leaves over 3 features and 3 classes by default:
    tree 0 is node 0 (x0 <= 10: node 1, else leaf 0), node 1 (x1 <= -5: leaf 1, else leaf 2);
    tree 1 is node 2 (x2 <= 0: leaf 3, else leaf 0). Returns (lines, index of the Bad line or of 'done')."""
    trees = ["tree 0", "tree 2"] if trees is None else trees
    nodes = ["node 0 10 1 -1", "node 1 -5 -2 -3", "node 2 0 -4 -1"] if nodes is None else nodes
    if leaves is None:
        leaves = [leaf(1, 0, 0), leaf(0, 1, 0), leaf(0, 0, 1), leaf(0.5, 0.5, 0)]
    lines = ["forest %d %d %d %d %d %d %d " % shape + hex32(weight), *trees, *nodes, *leaves, "done", *rows, "end"]
    marked = [i for i, line in enumerate(lines) if isinstance(line, Bad)]
    return lines, marked[0] if marked else lines.index("done")


def bad_shape(shape):
    """The default records under a shape the core must reject at the forest record."""
    return records(shape=shape)[0], 0


def leaf(*values) -> str:
    return "leaf" + "".join(" " + hex32(v) for v in values)


def leaf_bits(*bits: int) -> str:
    return "leaf" + "".join(" %08x" % b for b in bits)


NAN, INF = float("nan"), float("inf")
HARD, REG, F32 = (2, 1, 3, 3, 2, 3, 4), (3, 1, 3, 0, 2, 3, 4), (1, 2, 3, 3, 2, 3, 4)
HARD_LEAVES = [leaf(0), leaf(1), leaf(2), leaf(1)]
REG_LEAVES = [leaf(1.5), leaf(-2), leaf(3.25), leaf(0)]

INVALID = {
    # shapes
    "kind 0": (bad_shape((0, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "kind 4": (bad_shape((4, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "kind 257": (bad_shape((257, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "dtype 0": (bad_shape((1, 0, 3, 3, 2, 3, 4)), "BAD_DTYPE"),
    "dtype 3": (bad_shape((1, 3, 3, 3, 2, 3, 4)), "BAD_DTYPE"),
    "0 features": (bad_shape((1, 1, 0, 3, 2, 3, 4)), "BAD_N_FEATURES"),
    "65536 features": (bad_shape((1, 1, 65536, 3, 2, 3, 4)), "BAD_N_FEATURES"),
    "soft, 0 classes": (bad_shape((1, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "hard, 0 classes": (bad_shape((2, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "65536 classes": (bad_shape((1, 1, 3, 65536, 2, 3, 4)), "BAD_N_CLASSES"),
    "regressor with classes": (bad_shape((3, 1, 3, 1, 2, 3, 4)), "BAD_N_CLASSES"),
    "regressor with 3 classes": (bad_shape((3, 2, 3, 3, 2, 3, 4)), "BAD_N_CLASSES"),
    "0 trees": (bad_shape((1, 1, 3, 3, 0, 3, 4)), "NO_TREES"),
    "0 leaves": (bad_shape((1, 1, 3, 3, 2, 3, 0)), "BAD_N_LEAVES"),
    "32769 leaves": (bad_shape((1, 1, 3, 3, 2, 3, 32769)), "BAD_N_LEAVES"),
    "2**32-1 leaves": (bad_shape((3, 1, 3, 0, 2, 3, UINT32_MAX)), "BAD_N_LEAVES"),
    "2**24+1 trees": (bad_shape((1, 1, 3, 3, MAX_NODES + 1, 3, 4)), "TOO_BIG"),
    "2**32-1 trees": (bad_shape((3, 2, 3, 0, UINT32_MAX, 3, 4)), "TOO_BIG"),
    "2**24+1 nodes": (bad_shape((1, 2, 3, 3, 2, MAX_NODES + 1, 4)), "TOO_BIG"),
    "2**32-1 nodes": (bad_shape((3, 1, 3, 0, 2, UINT32_MAX, 4)), "TOO_BIG"),
    "leaves * classes > 2**24": (bad_shape((1, 1, 3, 1000, 2, 3, 20000)), "TOO_BIG"),
    "65535 classes, 257 leaves": (bad_shape((1, 1, 3, 65535, 2, 3, 257)), "TOO_BIG"),
    # tree records
    "root past the last node": (records(trees=["tree 0", Bad("tree 3")]), "NODE_REF_RANGE"),
    "root int32 max": (records(trees=[Bad("tree %d" % INT32_MAX), "tree 2"]), "NODE_REF_RANGE"),
    "root past the last leaf": (records(trees=["tree 0", Bad("tree -5")]), "LEAF_REF_RANGE"),
    "root int32 min": (records(trees=[Bad("tree %d" % INT32_MIN), "tree 2"]), "LEAF_REF_RANGE"),
    "too many trees": (records(trees=["tree 0", "tree 2", Bad("tree 1")]), "TOO_MANY_TREES"),
    "too few trees": (records(trees=["tree 0"]), "MISSING_TREES"),
    "no records at all": (records(trees=[], nodes=[], leaves=[]), "MISSING_TREES"),
    # node records
    "left offset 0": (records(nodes=[Bad("node 0 10 0 -1"), "node 1 -5 -2 -3", "node 2 0 -4 -1"]),
                      "CHILD_BEFORE_PARENT"),
    "right offset 0": (records(nodes=["node 0 10 1 -1", Bad("node 1 -5 -2 0"), "node 2 0 -4 -1"]),
                       "CHILD_BEFORE_PARENT"),
    "left past the last node": (records(nodes=[Bad("node 0 10 3 -1"), "node 1 -5 -2 -3", "node 2 0 -4 -1"]),
                                "NODE_REF_RANGE"),
    "right past the last node": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3", Bad("node 2 0 -4 1")]),
                                 "NODE_REF_RANGE"),
    "offset 32768": (records(shape=(1, 1, 3, 3, 2, 40000, 4), nodes=[Bad("node 0 10 32768 -1")]),
                     "CHILD_TOO_FAR"),
    "offset int32 max": (records(nodes=["node 0 10 1 -1", Bad("node 1 -5 -2 %d" % INT32_MAX), "node 2 0 -4 -1"]),
                         ("CHILD_TOO_FAR", "NODE_REF_RANGE")),
    "offset 32767 past the last node": (records(shape=(1, 1, 3, 3, 2, 40000, 4), trees=["tree 0", "tree 1"],
                                                nodes=["node 0 10 1 -1"] * 7233 + [Bad("node 0 10 32767 -1")]),
                                        "NODE_REF_RANGE"),
    "left leaf past the last leaf": (records(nodes=["node 0 10 1 -1", Bad("node 1 -5 -5 -3"), "node 2 0 -4 -1"]),
                                     "LEAF_REF_RANGE"),
    "right leaf int32 min": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3", Bad("node 2 0 -4 %d" % INT32_MIN)]),
                             "LEAF_REF_RANGE"),
    "leaf -32769 (int16 wrap)": (records(shape=(1, 1, 3, 3, 2, 3, 32768), nodes=[Bad("node 0 10 1 -32769")]),
                                 "LEAF_REF_RANGE"),
    "feature = n_features": (records(nodes=["node 0 10 1 -1", Bad("node 3 -5 -2 -3"), "node 2 0 -4 -1"]),
                             "FEATURE_RANGE"),
    "feature 65535 = n_features": (records(shape=(1, 1, 65535, 3, 2, 3, 4), nodes=[Bad("node 65535 10 1 -1")]),
                                   "FEATURE_RANGE"),
    "feature 65536 (uint16 wrap)": (records(shape=(1, 1, 65535, 3, 2, 3, 4), nodes=[Bad("node 65536 10 1 -1")]),
                                    "FEATURE_RANGE"),
    "feature 2**32-1": (records(nodes=[Bad("node %d 10 1 -1" % UINT32_MAX)]), "FEATURE_RANGE"),
    "int16 threshold 32768": (records(nodes=[Bad("node 0 32768 1 -1")]), "THRESHOLD_RANGE"),
    "int16 threshold -32769": (records(nodes=[Bad("node 0 -32769 1 -1")]), "THRESHOLD_RANGE"),
    "int16 threshold int32 max": (records(nodes=[Bad("node 0 %d 1 -1" % INT32_MAX)]), "THRESHOLD_RANGE"),
    "int16 threshold int32 min": (records(nodes=[Bad("node 0 %d 1 -1" % INT32_MIN)]), "THRESHOLD_RANGE"),
    "too many nodes": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3", "node 2 0 -4 -1", Bad("node 0 0 -1 -1")]),
                       "TOO_MANY_NODES"),
    "too few nodes": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3"]), "MISSING_NODES"),
    # leaf records
    "soft leaf of 2": (records(leaves=[leaf(1, 0, 0), Bad(leaf(0, 1))]), "LEAF_WIDTH"),
    "soft leaf of 4": (records(leaves=[Bad(leaf(1, 0, 0, 0))]), "LEAF_WIDTH"),
    "empty soft leaf": (records(leaves=[Bad(leaf())]), "LEAF_WIDTH"),
    "soft leaf inf": (records(leaves=[leaf(1, 0, 0), Bad(leaf(0, INF, 0))]), "NOT_FINITE"),
    "soft leaf -inf": (records(leaves=[Bad(leaf(0, 0, -INF))]), "NOT_FINITE"),
    "soft leaf NaN": (records(leaves=[Bad(leaf(NAN, 0, 0))]), "NOT_FINITE"),
    "soft leaf signalling NaN": (records(leaves=[Bad(leaf_bits(0, 0x7f800001, 0))]), "NOT_FINITE"),
    "soft leaf negative NaN": (records(leaves=[Bad(leaf_bits(0, 0, 0xffffffff))]), "NOT_FINITE"),
    "too many leaves": (records(leaves=[leaf(1, 0, 0)] * 4 + [Bad(leaf(1, 0, 0))]), "TOO_MANY_LEAVES"),
    "too few leaves": (records(leaves=[leaf(1, 0, 0)] * 3), "MISSING_LEAVES"),
    "regressor leaf of 2": (records(shape=REG, leaves=[Bad(leaf(1, 2))]), "LEAF_WIDTH"),
    "empty regressor leaf": (records(shape=REG, leaves=[leaf(1), Bad(leaf())]), "LEAF_WIDTH"),
    "regressor leaf NaN": (records(shape=REG, leaves=[leaf(1), Bad(leaf(NAN))]), "NOT_FINITE"),
    "regressor leaf inf": (records(shape=REG, leaves=[Bad(leaf(INF))]), "NOT_FINITE"),
    "hard leaf of 2": (records(shape=HARD, leaves=[Bad(leaf(0, 1))]), "LEAF_WIDTH"),
    "empty hard leaf": (records(shape=HARD, leaves=[Bad(leaf())]), "LEAF_WIDTH"),
    "hard class = n_classes": (records(shape=HARD, leaves=[leaf(0), Bad(leaf(3))]), "CLASS_RANGE"),
    "hard class -1": (records(shape=HARD, leaves=[Bad(leaf(-1))]), "CLASS_RANGE"),
    "hard class 0.5": (records(shape=HARD, leaves=[Bad(leaf(0.5))]), "CLASS_RANGE"),
    "hard class 2.5": (records(shape=HARD, leaves=[Bad(leaf(2.5))]), "CLASS_RANGE"),
    "hard class smallest subnormal": (records(shape=HARD, leaves=[Bad(leaf_bits(1))]), "CLASS_RANGE"),
    "hard class 1 + ulp": (records(shape=HARD, leaves=[Bad(leaf_bits(0x3f800001))]), "CLASS_RANGE"),
    "hard class NaN": (records(shape=HARD, leaves=[Bad(leaf(NAN))]), "CLASS_RANGE"),
    "hard class inf": (records(shape=HARD, leaves=[Bad(leaf(INF))]), "CLASS_RANGE"),
    "hard class -inf": (records(shape=HARD, leaves=[Bad(leaf(-INF))]), "CLASS_RANGE"),
    "hard class 65535 of 65535": (records(shape=(2, 1, 3, 65535, 2, 3, 4), leaves=[Bad(leaf(65535))]),
                                  "CLASS_RANGE"),
    "hard class 65536": (records(shape=(2, 1, 3, 65535, 2, 3, 4), leaves=[Bad(leaf(65536))]), "CLASS_RANGE"),
    "hard class 1e10": (records(shape=HARD, leaves=[Bad(leaf(1e10))]), "CLASS_RANGE"),
    "hard class 3e38": (records(shape=HARD, leaves=[Bad(leaf(3e38))]), "CLASS_RANGE"),
    # float32 thresholds
    "float32 threshold quiet NaN": (records(shape=F32, nodes=[Bad("node 0 7fc00000 1 -1")]), "NAN"),
    "float32 threshold negative NaN": (records(shape=F32, nodes=[Bad("node 0 ffc00000 1 -1")]), "NAN"),
    "float32 threshold signalling NaN": (records(shape=F32, nodes=[Bad("node 0 7f800001 1 -1")]), "NAN"),
    "float32 threshold NaN ffffffff": (records(shape=F32, nodes=[Bad("node 0 FFFFFFFF 1 -1")]), "NAN"),
    "float32 threshold 7 digits": (records(shape=F32, nodes=[Bad("node 0 3f80000 1 -1")]), "BAD_HEX"),
    "float32 threshold 9 digits": (records(shape=F32, nodes=[Bad("node 0 3f8000000 1 -1")]), "BAD_HEX"),
    "float32 threshold 0x": (records(shape=F32, nodes=[Bad("node 0 0x3f8000 1 -1")]), "BAD_HEX"),
    "float32 threshold decimal": (records(shape=F32, nodes=[Bad("node 0 1.500000 1 -1")]), "BAD_HEX"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_rejects_corrupt_forest(driver, case):
    (lines, bad_index), names = INVALID[case]
    proc = run(driver, "\n".join(lines) + "\n")
    allowed = ["error %d %d %s" % (ERR[name][0], bad_index + 1, ERR[name][1]) for name in _names(names)]
    assert proc.out[-1] in allowed, (proc.out[-1:], lines[bad_index])
    assert proc.returncode == 10 + int(proc.out[-1].split()[1])


def _names(names) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else names


@pytest.mark.parametrize("build", ["O0", "O2"])
def test_rejects_corrupt_forests_in_sequence(request, build):
    """Every corrupt forest of INVALID in one run with --keep-going: rejecting one record
    leaves nothing behind that upsets the next forest (and ASan watches all the frees)."""
    driver = request.getfixturevalue("driver" if build == "O0" else "driver_o2")
    lines, expected = [], []
    for (case_lines, bad_index), names in INVALID.values():
        expected.append(["error %d %d %s" % (ERR[name][0], len(lines) + bad_index + 1, ERR[name][1])
                         for name in _names(names)])
        lines += case_lines
    lines += records(rows=["row 10 -5 0"])[0]
    proc = run(driver, "\n".join(lines) + "\n", "--keep-going")
    assert proc.returncode == 0
    blocks = split_outputs(proc.out)
    assert len(blocks) == len(expected) + 1
    for block, allowed in zip(blocks, expected):
        assert block[-1] in allowed
    assert blocks[-1][-2:] == ["ready", "1 3e800000 3f400000 00000000"]


def stored_of(lines: list[str]) -> StoredForest:
    """The StoredForest of a forest in the driver's format (absolute child indices, float32 leaf table)."""
    shape, trees, nodes, leaves = None, [], [], []
    for line in lines:
        tag, *f = line.split()
        if tag == "forest":
            shape = [int(v) for v in f[:7]] + [f32(int(f[7], 16))]
        elif tag == "tree":
            trees.append(int(f[0]))
        elif tag == "node":
            nodes.append((int(f[0]), f[1], int(f[2]), int(f[3])))
        elif tag == "leaf":
            leaves.append([f32(int(v, 16)) for v in f])
    kind, dtype, n_features, n_classes, _, _, _, weight = shape
    stored = RawStoredForest(
        kind="regressor" if kind == 3 else "classifier", voting={1: "soft", 2: "hard", 3: None}[kind],
        dtype="int16" if dtype == 1 else "float32", n_features=n_features, n_classes=n_classes,
        roots=np.array(trees, dtype=np.int64),
        feature=np.array([n[0] for n in nodes], dtype=np.int64),
        threshold=(np.array([int(n[1], 16) for n in nodes], dtype=np.uint32).view(np.float32) if dtype == 2
                   else np.array([int(n[1]) for n in nodes], dtype=np.int64)),
        left=np.array([i + n[2] if n[2] > 0 else n[2] for i, n in enumerate(nodes)], dtype=np.int64),
        right=np.array([i + n[3] if n[3] > 0 else n[3] for i, n in enumerate(nodes)], dtype=np.int64),
        leaves=np.array(leaves, dtype=np.float64).reshape(len(leaves), -1))
    stored.weight = weight
    return stored


@dataclass
class RawStoredForest(StoredForest):
    """A StoredForest whose leaf table is taken as given (no soft-vote normalisation), with its own tree weight."""

    weight: np.float32 = field(default=np.float32(0))

    def leaf_values(self) -> np.ndarray:
        return self.leaves.astype(np.float32)

    @property
    def tree_weight(self) -> np.float32:
        return self.weight


VALID = {
    "default": records(rows=["row 10 -5 0", "row 11 0 1", "row -32768 32767 -1"])[0],
    "boundaries": records(
        shape=(1, 1, 65535, 3, 3, 3, 4),
        trees=["tree -4", "tree 2", "tree 0"],
        nodes=["node 65534 32767 2 -4", "node 1 -32768 -2 -3", "node 0 -1 -4 -1"],
        rows=["row " + " ".join(["-32768"] * 65535), "row " + " ".join(["32767"] * 65535)])[0],
    "float32 infinite thresholds": records(
        shape=F32, nodes=["node 0 7f800000 1 -1", "node 1 ff800000 -2 -3", "node 2 80000000 -4 -1"],
        rows=[row_text("float32", r) for r in ([INF, -INF, 0.0], [NAN, -INF, -0.0], [1e38, 1.0, NAN])])[0],
    "hard vote": records(shape=HARD, leaves=HARD_LEAVES, rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0"])[0],
    "hard vote, class 65534 of 65535": records(
        shape=(2, 1, 3, 65535, 2, 3, 4), leaves=[leaf(65534), leaf(0), leaf(65534), leaf(7)],
        rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0"])[0],
    "regressor": records(shape=REG, weight=0.25, leaves=REG_LEAVES, rows=["row 10 -5 0", "row 11 0 1"])[0],
    "regressor, huge leaves": records(
        shape=REG, leaves=[leaf(3e38), leaf(-3e38), leaf(3.4028235e38), leaf(-0.0)],
        rows=["row 10 -5 0", "row 11 0 1", "row 10 -4 1"])[0],
    "soft, no class weight": records(leaves=[leaf(0, 0, 0), leaf(0, 1, 0), leaf(0, 0, 1), leaf(0, 0, 0)],
                                     rows=["row 10 -5 0", "row 11 0 1"])[0],
}


@pytest.mark.parametrize("case", list(VALID))
def test_accepts_valid_forest(driver, case):
    lines = VALID[case]
    stored = stored_of(lines)
    if stored.dtype == "float32":
        rows = np.array([[f32(int(v, 16)) for v in line.split()[1:]] for line in lines if line.startswith("row ")])
    else:
        rows = np.array([[int(v) for v in line.split()[1:]] for line in lines if line.startswith("row ")])
    proc = run(driver, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.out[-1:]
    assert proc.out[0] == "bytes %d" % stored.ram_bytes() and proc.out[1] == "ready"
    assert_predictions(stored, rows, proc.out[2:-1], case)


def test_default_forest_by_hand(driver):
    """The default forest's predictions worked out by hand (independent of the numpy mirror)."""
    proc = run(driver, "\n".join(VALID["default"]) + "\n")
    # (10, -5, 0): tree 0 -> node 1 -> leaf 1, tree 1 -> leaf 3: (0 + .5, 1 + .5, 0) / 2
    # (11, 0, 1): leaf 0 twice; (-32768, 32767, -1): leaf 2 and leaf 3: (.5, .5, 1) / 2
    assert proc.out == ["bytes 100", "ready", "1 3e800000 3f400000 00000000",
                        "0 3f800000 00000000 00000000", "2 3e800000 3e800000 3f000000", "end"]


@pytest.mark.parametrize("shape", [
    (1, 1, 65535, 3, 2, 3, 4), (3, 2, 1, 0, 1, 0, 32768), (2, 1, 1, 65535, 1, 0, 256),
    (2, 1, 1, 65535, 1, 0, 32768),
    (2, 1, 1, 1000, 1, 0, 16777), (1, 2, 1, 65535, 1, 0, 256), (1, 1, 1, 1, 1, 0, 32768),
    (3, 1, 1, 0, MAX_NODES, MAX_NODES, 1), (1, 2, 7, 1000, 5, MAX_NODES, 16777), (2, 2, 3, 5, 1, 1, 1),
])
def test_shape_limits_and_bytes(driver, shape):
    """Shapes at the limits are accepted, and mpyml_forest_bytes is the documented size."""
    kind, dtype, n_features, n_classes, n_trees, n_nodes, n_leaves = shape

    def align4(n):
        return (n + 3) & ~3

    want = align4(4 * n_trees) + align4((4 if dtype == 2 else 2) * n_nodes) + 3 * align4(2 * n_nodes)
    want += align4(2 * n_leaves) if kind == 2 else 4 * n_leaves * (n_classes if kind == 1 else 1)
    want += 4 * max(n_classes, 1)
    proc = run(driver, "shape %d %d %d %d %d %d %d\n" % shape)
    assert proc.returncode == 0 and proc.out == ["shape %d" % want]


# ---------------------------------------------------------------- random garbage


class Reference:
    """Replays one forest's records as the core must validate them: codes() gives the error codes
    a record may be rejected with (every check it fails; empty when it must be accepted)."""

    def __init__(self):
        self.shape = None
        self.counts = [0, 0, 0]

    def codes(self, tag, args) -> set[str]:
        if tag == "forest":
            kind, dtype, nf, nc, nt, nn, nl = args[:7]
            self.shape = args[:7]
            bad = set()
            if kind not in (1, 2, 3):
                bad.add("BAD_KIND")
            if dtype not in (1, 2):
                bad.add("BAD_DTYPE")
            if not 1 <= nf <= 65535:
                bad.add("BAD_N_FEATURES")
            if nc > 65535 or (nc != 0 if kind == 3 else nc < 1):
                bad.add("BAD_N_CLASSES")
            if nt < 1:
                bad.add("NO_TREES")
            if not 1 <= nl <= 32768:
                bad.add("BAD_N_LEAVES")
            if nt > MAX_NODES or nn > MAX_NODES or (0 < nc <= 65535 and nl > MAX_NODES // nc):
                bad.add("TOO_BIG")
            return bad
        kind, dtype, nf, nc, nt, nn, nl = self.shape
        if tag == "tree":
            bad = {"TOO_MANY_TREES"} if self.counts[0] >= nt else set()
            root = args[0]
            if root >= nn if root >= 0 else -(root + 1) >= nl:
                bad.add("NODE_REF_RANGE" if root >= 0 else "LEAF_REF_RANGE")
            if not bad:
                self.counts[0] += 1
            return bad
        if tag == "node":
            feature, threshold, left, right = args
            node = self.counts[1]
            bad = set()
            if node >= nn:
                bad.add("TOO_MANY_NODES")
            if feature >= nf:
                bad.add("FEATURE_RANGE")
            for ref in (left, right):
                if ref < 0:
                    if -(ref + 1) >= nl:
                        bad.add("LEAF_REF_RANGE")
                elif ref == 0:
                    bad.add("CHILD_BEFORE_PARENT")
                else:
                    if ref > 32767:
                        bad.add("CHILD_TOO_FAR")
                    if node < nn and ref >= nn - node:
                        bad.add("NODE_REF_RANGE")
            if dtype == 2:
                if not re.fullmatch(r"[0-9a-fA-F]{8}", threshold):
                    bad.add("BAD_HEX")
                elif np.isnan(f32(int(threshold, 16))):
                    bad.add("NAN")
            elif not -32768 <= int(threshold) <= 32767:
                bad.add("THRESHOLD_RANGE")
            if not bad:
                self.counts[1] += 1
            return bad
        if tag == "leaf":
            values = [f32(v) for v in args]
            bad = {"TOO_MANY_LEAVES"} if self.counts[2] >= nl else set()
            if kind == 2:
                if len(values) != 1:
                    bad.add("LEAF_WIDTH")
                elif not (0 <= values[0] < nc and values[0] == math.floor(values[0])):
                    bad.add("CLASS_RANGE")
            else:
                if len(values) != (nc if kind == 1 else 1):
                    bad.add("LEAF_WIDTH")
                if not all(np.isfinite(values)):
                    bad.add("NOT_FINITE")
            if not bad:
                self.counts[2] += 1
            return bad
        assert tag == "done"
        return {name for name, count, total in zip(("MISSING_TREES", "MISSING_NODES", "MISSING_LEAVES"),
                                                   self.counts, (nt, nn, nl)) if count != total}


def random_forest_records(rng: np.random.Generator, chaos: bool):
    """One random forest as (tag, args) records: mostly plausible with a few garbage fields,
    or (chaos) any records in any order with values from wide ranges."""

    def garbage(p=0.03):
        return rng.random() < (0.5 if chaos else p)

    def bad_shape():
        return rng.random() < (0.08 if chaos else 0.02)

    def pick(values):
        return values[rng.integers(len(values))]

    kind = int(rng.integers(1, 4)) if not bad_shape() else pick([0, 4, 255, 256, 2**31])
    dtype = int(rng.integers(1, 3)) if not bad_shape() else pick([0, 3, 256])
    nf = int(rng.integers(1, 5)) if not bad_shape() else pick([0, 65535, 65536, UINT32_MAX])
    nc = (0 if kind == 3 else int(rng.integers(1, 5))) if not bad_shape() else pick([0, 1, 65535, 65536, UINT32_MAX])
    nt = int(rng.integers(1, 5)) if not bad_shape() else pick([0, MAX_NODES + 1, UINT32_MAX])
    nn = int(rng.integers(0, 12)) if not bad_shape() else pick([MAX_NODES + 1, UINT32_MAX])
    nl = int(rng.integers(1, 7)) if not bad_shape() else pick([0, 32769, UINT32_MAX])
    nt_, nn_, nl_ = (min(v, 12) for v in (nt, nn, nl))
    weight = int(bits32(1.0 / max(nt, 1))[0]) if rng.random() < 0.85 else pick(
        [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc12345, 0x7f7fffff, int(rng.integers(0, 2**32))])
    recs = [("forest", (kind, dtype, nf, nc, nt, nn, nl, weight))]

    def ref(node):
        # a child reference of node `node`: a valid node offset or leaf, or garbage
        if garbage():
            return pick([0, nn_ - node, nn_ - node + 1, 32767, 32768, -nl_ - 1, -32768, -32769,
                         INT32_MAX, INT32_MIN, int(rng.integers(INT32_MIN, INT32_MAX))])
        if node + 1 < nn_ and rng.random() < 0.5:
            return int(rng.integers(1, nn_ - node))
        return -int(rng.integers(1, max(nl_, 1) + 1))

    def count(n):
        return max(0, n + int(rng.integers(-1, 2))) if garbage(0.05) else n

    for _ in range(count(nt_)):
        root = ref(-1) if nn_ == 0 or rng.random() < 0.3 else int(rng.integers(0, nn_))
        recs.append(("tree", (root,)))
    for i in range(count(nn_)):
        feature = int(rng.integers(0, max(1, min(nf, 8)))) if not garbage() else pick(
            [nf, 65535, 65536, UINT32_MAX, int(rng.integers(0, 2**32))])
        if dtype == 2:
            if garbage():
                threshold = pick(["7fc00000", "ffc00000", "7f800001", "FFFFFFFF", "%08x" % rng.integers(0, 2**32),
                                  "7f80000", "0x7f8000", "7f8000000", "zzzzzzzz", "-1000000"])
            else:
                threshold = hex32(np.float32(rng.normal() * pick([1, 4, 1e-3])))
        elif garbage():
            threshold = str(pick([32768, -32769, INT32_MAX, INT32_MIN, int(rng.integers(INT32_MIN, INT32_MAX))]))
        else:
            threshold = str(int(rng.integers(-6, 7)) if rng.random() < 0.9 else pick([-32768, 32767]))
        recs.append(("node", (feature, threshold, ref(i), ref(i))))
    width = nc if kind == 1 else 1
    for _ in range(count(nl_)):
        n = min(width, 8) if not garbage() else int(rng.integers(0, 6))
        if kind == 2:
            values = [float(rng.integers(0, max(1, min(nc, 8)))) for _ in range(n)]
        elif kind == 1:
            values = list(rng.random(n))
        else:
            values = list(rng.normal(size=n) * 10)
        values = [int(bits32(v)[0]) for v in values]
        if values and garbage():
            values[int(rng.integers(len(values)))] = pick(
                [0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff, 0x7f800001, 0x3f000000, 0xbf800000,
                 int(bits32(nc)[0]), 0x7f7fffff, 0xff7fffff, 0x80000000, 1, int(rng.integers(0, 2**32))])
        recs.append(("leaf", tuple(values)))
    if chaos or rng.random() < 0.05:
        order = rng.permutation(len(recs) - 1) + 1
        recs = recs[:1] + [recs[i] for i in order]
    if rng.random() < 0.97:
        recs.append(("done", ()))
    return recs


def record_line(tag, args) -> str:
    if tag == "forest":
        return "forest %d %d %d %d %d %d %d %08x" % args
    if tag == "leaf":
        return leaf_bits(*args)
    return " ".join([tag, *map(str, args)])


def random_rows(rng: np.random.Generator, stored: StoredForest, n: int) -> np.ndarray:
    nf = stored.n_features
    if stored.dtype == "int16":
        rows = rng.integers(-7, 8, size=(n, nf))
        extreme = rng.random((n, nf)) < 0.1
        rows[extreme] = rng.choice([-32768, 32767], extreme.sum())
        return rows
    rows = (rng.normal(size=(n, nf)) * 3).astype(np.float32)
    if stored.n_nodes:
        mask = rng.random((n, nf)) < 0.3
        rows[mask] = stored.threshold[rng.integers(0, stored.n_nodes, mask.sum())]
    special = rng.random((n, nf)) < 0.05
    rows[special] = rng.choice(np.array([np.inf, -np.inf, np.nan, -0.0], dtype=np.float32), special.sum())
    return rows


def test_fuzz_random_garbage(driver, driver_o2):
    """A few thousand random records, some garbage: every forest is accepted or rejected at the
    record and with a code the reference validator expects, nothing upsets ASan or UBSan, and
    every accepted forest predicts what the numpy mirror predicts (with the -O0 and -O2 builds)."""
    rng = np.random.default_rng(SEED)
    lines, forests = [], []
    n_records = 0
    for i in range(700):
        recs = random_forest_records(rng, chaos=i % 5 == 4)
        n_records += len(recs)
        reference = Reference()
        first = len(lines)
        verdict = None
        for index, (tag, args) in enumerate(recs):
            bad = reference.codes(tag, args)
            if bad:
                verdict = (first + index + 1, bad)
                break
        block = [record_line(tag, args) for tag, args in recs]
        rows = None
        if verdict is None and recs[-1][0] == "done":
            stored = stored_of(block)
            rows = random_rows(rng, stored, 4)
            block += [row_text(stored.dtype, row) for row in rows]
        lines += block + ["end"]
        forests.append((verdict, rows, block, recs[-1][0] == "done"))
    assert n_records > 3000
    n_accepted = sum(f[0] is None and f[3] for f in forests)
    n_rejected = sum(f[0] is not None for f in forests)
    assert n_accepted > 150 and n_rejected > 150, (n_accepted, n_rejected)
    text = "\n".join(lines) + "\n"
    for exe in (driver, driver_o2):
        proc = run(exe, text, "--keep-going")
        assert proc.returncode == 0
        blocks = split_outputs(proc.out)
        assert len(blocks) == len(forests)
        for (verdict, rows, block, done), out in zip(forests, blocks):
            if verdict is not None:
                line, codes = verdict
                m = re.fullmatch(r"error (\d+) (\d+) .*", out[-1])
                assert m, (block, out)
                got = [name for name, code in CODE.items() if code == int(m.group(1))][0]
                assert (int(m.group(2)), got) in {(line, c) for c in codes}, (block, out, verdict)
                continue
            assert not any(o.startswith("error") for o in out), (block, out)
            if not done:
                continue
            stored = stored_of(block)
            assert out[:2] == ["bytes %d" % stored.ram_bytes(), "ready"]
            assert_predictions(stored, rows, out[2:], "\n".join(block))


# ---------------------------------------------------------------- helpers of mpyml_common.h


def test_udiv_matches_divmod(driver):
    rng = np.random.default_rng(SEED)
    edges = sorted({0, 1, 2, 3, 5, 7, 10, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0x80000001,
                    0xfffffffe, 0xffffffff} | {2**k for k in range(32)} | {2**k - 1 for k in range(1, 33)}
                   | {2**k + 1 for k in range(32)})
    pairs = [(n, d) for n in edges for d in edges if d]
    pairs += [(int(n), int(d)) for n, d in rng.integers(0, 2**32, size=(3000, 2)) if d]
    pairs += [(int(n), int(d)) for n, d in zip(rng.integers(0, 2**32, 1000), rng.integers(1, 300, 1000))]
    pairs += [(int(n), int(d)) for n, d in zip(rng.integers(0, 1000, 500), rng.integers(1000, 2**32, 500))]
    text = "".join("udiv %d %d\n" % p for p in pairs)
    proc = run(driver, text, "helpers")
    assert proc.returncode == 0
    got = [tuple(map(int, line.split())) for line in proc.out]
    assert len(got) == len(pairs)
    for (n, d), qr in zip(pairs, got):
        assert qr == divmod(n, d), (n, d)


def test_udiv_by_zero_terminates(driver):
    """Division by zero is never asked of it (shapes with 0 classes skip it); it must still just return."""
    proc = run(driver, "udiv 0 0\nudiv 12345 0\nudiv 4294967295 0\n", "helpers")
    assert proc.returncode == 0 and len(proc.out) == 3


def test_parse_hex32(driver):
    rng = np.random.default_rng(SEED)
    valid = ["00000000", "ffffffff", "FFFFFFFF", "0123abcd", "DEADbeef", "7fc00000", "80000000", "3F800000",
             "a0b1c2d3", "AbCdEf09"]
    valid += ["%08x" % v if i % 2 else "%08X" % v for i, v in enumerate(rng.integers(0, 2**32, 300))]
    invalid = [b"", b"0", b"1234567", b"123456789", b"0x123456", b"0X123456", b"g0000000", b"0000000g",
               b" 1234567", b"1234567 ", b"-1234567", b"+1234567", b"1234 567", b"\t1234567", b"1234567\r",
               b"0000000/", b"0000000:", b"0000000@", b"0000000G", b"0000000`", b"0000000h", b"\xff" * 8,
               b"\xc3\xa9" * 4, b"000000\x00\x00", b"\x00" * 8, b"00000000" * 2]
    lines = [b"hex " + v.encode() for v in valid] + [b"hex " + v for v in invalid]
    proc = run(driver, b"\n".join(lines) + b"\n", "helpers")
    assert proc.returncode == 0
    assert proc.out[:len(valid)] == ["ok %08x" % int(v, 16) for v in valid]
    for text, line in zip(invalid, proc.out[len(valid):]):
        assert line.split()[:2] == ["error", str(CODE["BAD_HEX"])], text


def test_is_finite_and_bits(driver):
    rng = np.random.default_rng(SEED)
    special = [0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00800000, 0x3f800000, 0x7f7fffff, 0xff7fffff,
               0x7f800000, 0xff800000, 0x7f800001, 0x7fc00000, 0xffc00000, 0x7fffffff, 0xffffffff, 0xff800001]
    values = special + [int(v) for v in rng.integers(0, 2**32, 2000)]
    values += [int(v) | 0x7f800000 for v in rng.integers(0, 2**32, 200)]  # exponent all ones
    proc = run(driver, "".join("finite %08x\n" % v for v in values), "helpers")
    assert proc.returncode == 0
    assert len(proc.out) == len(values)
    for v, line in zip(values, proc.out):
        want = math.isfinite(struct.unpack("<f", struct.pack("<I", v))[0])
        assert line == "%d %08x" % (want, v), hex(v)
