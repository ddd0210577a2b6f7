"""The portable C core (natmods/common/mpyml_trees.h, mpyml_common.h) built for the host.

tests/c/trees_driver.c is compiled with ASan and UBSan and fed forests in a small
line format of its own (described at the top of the driver). The tests check
that the core predicts bit for bit what StoredForest's numpy mirror predicts
(every forest kind: soft voting with count and float64 leaves, hard voting,
AdaBoost SAMME, regressors; NaN directions; exact vote ties), that it rejects
every corrupt record with the right error code, that random garbage never makes
it crash, and its integer / hex / float helpers, mpyml_f64_div among them.
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
from mpyml.formats import trees as trees_format
from mpyml import trees
from mpyml.trees import StoredForest, forest_from_sklearn, lower

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER_SOURCE = ROOT / "tests" / "c" / "trees_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(COMMON)]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}

# mpyml_trees_kind_t of (voting, leaf_kind)
KINDS = {("soft", "counts"): 1, ("hard", "class"): 2, (None, "float32"): 3, ("samme", "class"): 4,
         ("soft", "float64"): 5}
KIND_OF_CODE = {code: kind for kind, code in KINDS.items()}
DTYPES = {"int16": 1, "float32": 2}
INT32_MIN, INT32_MAX, UINT32_MAX = -(2**31), 2**31 - 1, 2**32 - 1
MAX_NODES = 2**24
MAX_FEATURES = 32767
# Proba of SAMME forests: the device's float32 softmax against the mirror's float64 one.
SAMME_PROBA_TOLERANCE = 1e-5


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
    proc = subprocess.run([str(exe), *args], input=data, capture_output=True, timeout=300, env=env)
    stderr = proc.stderr.decode(errors="replace")
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr[-4000:]
    assert proc.returncode != 2, "the test sent input the driver cannot read:\n" + stderr[-2000:]
    proc.out = proc.stdout.decode().splitlines()
    return proc


def bits32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32)


def hex32(value) -> str:
    return "%08x" % int(bits32(value)[0])


def hex64(value) -> str:
    return "%016x" % int(np.float64(value).view(np.uint64))


def f32(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def f64(text: str) -> float:
    return float(np.uint64(int(text, 16)).view(np.float64))


# ---------------------------------------------------------------- StoredForest -> driver input


def row_text(dtype: str, row) -> str:
    if dtype == "float32":
        return "row " + " ".join("%08x" % b for b in bits32(row))
    return "row " + " ".join(str(int(v)) for v in row)


def leaf_line(stored: StoredForest, leaf: np.ndarray) -> str:
    if stored.leaf_kind == "counts":
        return "counts " + " ".join(str(int(c)) for c in leaf)
    if stored.leaf_kind == "float64":
        return "exact " + "".join(hex64(p) for p in leaf)
    if stored.leaf_kind == "class":
        return "class %d" % int(leaf[0])
    return "value " + hex32(leaf[0])


def default_layout_bytes(stored: StoredForest) -> int:
    """The driver's block size for a forest without a layout record: int16 (or float32) thresholds and,
    for soft voting with counts, 32-bit pairs for every class of every leaf (at most 32768) and a total per leaf."""
    def align4(n):
        return (n + 3) & ~3

    n = stored.ram_bytes()
    if stored.dtype == "int16" and stored.threshold_dtype == "int8":
        n += align4(2 * stored.n_nodes) - align4(stored.n_nodes)
    if stored.leaf_kind == "counts":
        n_pairs, max_count, n_totals = stored.pair_stats()
        n -= align4(trees.pair_bytes(stored.n_classes, max_count) * n_pairs) + 8 * n_totals
        n_pairs = max(stored.n_leaves, min(stored.n_leaves * stored.n_classes, 32768))
        n += align4(4 * n_pairs) + 8 * stored.n_leaves
    return n


def layout_line(stored: StoredForest) -> str:
    """The driver's layout record: the storage fields the model file's header gives the device."""
    pairs = stored.pair_stats() if stored.leaf_kind == "counts" else (0, 0, 0)
    return "layout %d %d %d %d" % ({"int8": 1, "int16": 2, "float32": 4}[stored.threshold_dtype], *pairs)


def forest_lines(stored: StoredForest, rows) -> list[str]:
    """Driver records of `stored`, with roots and nodes taken from its model file text.

    The tree and node records (roots, SAMME votes, feature, threshold text, relative
    children, NaN direction) are exactly what trees_format writes, so they come from the writer.
    """
    text = trees_format.dumps(stored).splitlines()
    t, n, l = text.index("trees"), text.index("nodes"), text.index("leaves")
    assert n - t - 1 == stored.n_trees and l - n - 1 == stored.n_nodes
    shape = (KINDS[(stored.voting, stored.leaf_kind)], DTYPES[stored.dtype], stored.n_features, stored.n_classes,
             stored.n_trees, stored.n_nodes, stored.n_leaves)
    lines = [layout_line(stored), "forest %d %d %d %d %d %d %d " % shape + hex32(stored.tree_weight)]
    if stored.voting == "samme":
        lines.append("sum " + hex64(stored.weight_sum))
    lines += ["tree " + record.replace(",", " ") for record in text[t + 1:n]]
    lines += ["node " + record.replace(",", " ") for record in text[n + 1:l]]
    lines += [leaf_line(stored, leaf) for leaf in stored.leaves]
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
    """The driver's per-row lines match StoredForest.predict_index / predict_proba bit for bit
    (SAMME proba: within SAMME_PROBA_TOLERANCE)."""
    assert len(lines) == len(rows), what
    with np.errstate(over="ignore", invalid="ignore"):
        _assert_predictions(stored, rows, lines, what)


def _assert_predictions(stored: StoredForest, rows: np.ndarray, lines: list[str], what: str):
    if stored.kind == "regressor":
        got = np.array([int(line, 16) for line in lines], dtype=np.uint32)
        want = bits32(stored.predict_index(rows))
        bad = np.flatnonzero(got != want)
        assert not len(bad), "%s: row %s: C %08x, numpy %08x" % (what, rows[bad[0]], got[bad[0]], want[bad[0]])
        return
    fields = [line.split() for line in lines]
    got_class = np.array([int(f[0]) for f in fields], dtype=np.int64)
    got_bits = np.array([[int(v, 16) for v in f[1:]] for f in fields], dtype=np.uint32).reshape(len(rows), -1)
    want_class = stored.predict_index(rows)
    if stored.voting == "samme":
        got_proba = got_bits.view(np.float32).astype(np.float64)
        proba_bad = np.any(np.abs(got_proba - stored.predict_proba(rows)) > SAMME_PROBA_TOLERANCE, axis=1)
        want_text = stored.predict_proba(rows)
    else:
        want_bits = stored.predict_proba(rows).astype(np.float32).view(np.uint32)
        proba_bad = np.any(got_bits != want_bits, axis=1)
        want_text = [["%08x" % b for b in row] for row in want_bits]
    bad = np.flatnonzero((got_class != want_class) | proba_bad)
    assert not len(bad), "%s: row %s: C %s, numpy %d %s" % (
        what, rows[bad[0]], lines[bad[0]], want_class[bad[0]], want_text[bad[0]])


def check_parity(exe: Path, cases: list[tuple[StoredForest, np.ndarray]]):
    lines = []
    for stored, rows in cases:
        lines += forest_lines(stored, rows)
    proc = run(exe, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.out[-3:]
    blocks = split_outputs(proc.out)
    assert len(blocks) == len(cases)
    for (stored, rows), block in zip(cases, blocks):
        what = "%s %s %s %s" % (stored.kind, stored.voting, stored.leaf_kind, stored.dtype)
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
    neighbours (float32: np.nextafter either way, and NaN; int16: t - 1 and t + 1), then extreme rows."""
    X = cast_rows(X, stored.dtype)
    nodes = np.arange(stored.n_nodes)
    base = X[nodes % len(X)]
    t = stored.threshold
    if stored.dtype == "float32":
        t = t.astype(np.float32)
        values = [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(-np.inf)),
                  np.full_like(t, np.nan)]
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
    thresholds send every int16 one way and the exporter drops those nodes); 'nan' is the
    float32 random dataset with a tenth of its values missing (NaN)."""
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
    if base == "nan":
        X[rng.random(X.shape) < 0.1] = np.nan
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
    if model == "adaboost":
        return ensemble.AdaBoostClassifier(tree.DecisionTreeClassifier(max_depth=2), n_estimators=8, random_state=3)
    return (ensemble.ExtraTreesClassifier if cls else ensemble.ExtraTreesRegressor)(n_estimators=6, random_state=2)


def fitted(data: str, model: str, dtype: str):
    X, y = dataset(data, dtype)
    est = make_estimator(model, data.rsplit("_", 1)[1])
    # Random sample weights for the single trees and the random forests: fractional leaf counts,
    # so single trees' soft-vote leaves are stored as float64 probabilities (random forests draw
    # their bootstrap samples by weight and may keep whole counts).
    weight = np.random.default_rng(SEED).uniform(0.5, 2.0, len(X)) if model in ("tree", "forest") else None
    return est.fit(X, y, sample_weight=weight), X


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", ["tree", "forest", "extra", "adaboost"])
@pytest.mark.parametrize("data", ["iris_cls", "wine_cls", "random_cls", "nan_cls"])
def test_parity_classifier(driver, data, model, dtype):
    if data == "nan_cls" and (dtype == "int16" or model in ("extra", "adaboost")):
        pytest.skip("int16 features have no NaN; ExtraTrees and AdaBoost do not train on NaN")
    est, X = fitted(data, model, dtype)
    forest = forest_from_sklearn(est)
    soft, hard = lower(forest, dtype, "soft"), lower(forest, dtype, "hard")
    if data == "nan_cls":
        assert soft.nan_left.any() and not soft.nan_left.all()
    if model == "tree":
        assert soft.leaf_kind == "float64"
    elif model == "adaboost":
        assert soft.voting == "samme"
    elif model == "extra":
        assert soft.leaf_kind == "counts"
    rows = probe_rows(soft, X)
    check_parity(driver, [(soft, rows), (hard, rows)])


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", ["tree", "forest", "extra"])
@pytest.mark.parametrize("data", ["iris_reg", "wine_reg", "random_reg", "nan_reg"])
def test_parity_regressor(driver, data, model, dtype):
    if data == "nan_reg" and (dtype == "int16" or model == "extra"):
        pytest.skip("int16 features have no NaN; ExtraTrees do not train on NaN")
    est, X = fitted(data, model, dtype)
    stored = lower(forest_from_sklearn(est), dtype)
    check_parity(driver, [(stored, probe_rows(stored, X))])


def test_parity_vote_ties(driver):
    """Soft-vote sums that float32 cannot separate are decided as scikit-learn's float64 ones
    (issue 11's ExtraTrees case: predict_proba [0.49999999999999994, 0.5] -> class 1), and
    a RandomForest with class_weight='balanced' (float64 leaves) on many near-tied rows."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    X = np.arange(8, dtype=np.float64)[:, None]
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    et = ExtraTreesClassifier(n_estimators=3, max_depth=1, random_state=226).fit(X, y)
    assert et.predict([[5.0]])[0] == 1
    cases = []
    for dtype in ("int16", "float32"):
        stored = lower(forest_from_sklearn(et), dtype, "soft")
        assert stored.predict_index(np.array([[5]]))[0] == 1
        assert np.argmax(stored.predict_proba(np.array([[5]]))[0]) == 0, "float32 sums alone would say class 0"
        cases.append((stored, probe_rows(stored, X)))
    rng = np.random.default_rng(SEED)
    Xb = rng.integers(0, 4, size=(200, 3)).astype(np.float64)
    yb = rng.integers(0, 3, 200)
    rf = RandomForestClassifier(n_estimators=7, class_weight="balanced", max_depth=3, random_state=0).fit(Xb, yb)
    stored = lower(forest_from_sklearn(rf), "float32", "soft")
    cases.append((stored, probe_rows(stored, Xb)))
    check_parity(driver, cases)
    assert np.array_equal(stored.predict(Xb.astype(np.float32)), rf.predict(Xb.astype(np.float32)))


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
                          left=left, right=right, leaves=np.arange(n_leaves, dtype=np.float64)[:, None] * 0.5,
                          leaf_kind="float32")
    rows = np.array([[x0, x1] for x0 in (-1, 0, 1, 32767) for x1 in (-32768, 5, 6, 9, 10, 32767)])
    assert set(stored.leaf_indices(rows)[:, 0]) >= {32767, 1, 32766}
    check_parity(driver, [(stored, rows)])


# ---------------------------------------------------------------- validation of hand-made corrupt forests


class Bad(str):
    """Marks the record a case expects the driver to reject."""


SOFT_LEAVES = ["counts 1 0 0", "counts 0 1 0", "counts 0 0 1", "counts 1 1 0"]


def records(shape=(1, 1, 3, 3, 2, 3, 4), weight=0.5, trees=None, nodes=None, leaves=None, rows=(), head=()):
    """A soft-vote int16 forest of 2 trees, 3 nodes, 4 leaves over 3 features and 3 classes by default:
    tree 0 is node 0 (x0 <= 10: node 1, else leaf 0), node 1 (x1 <= -5: leaf 1, else leaf 2);
    tree 1 is node 2 (x2 <= 0: leaf 3, else leaf 0). `head`: records between the forest and its trees.
    Returns (lines, index of the Bad line or of 'done')."""
    trees = ["tree 0", "tree 2"] if trees is None else trees
    nodes = ["node 0 10 1 -1", "node 1 -5 -2 -3", "node 2 0 -4 -1"] if nodes is None else nodes
    leaves = SOFT_LEAVES if leaves is None else leaves
    lines = ["forest %d %d %d %d %d %d %d " % shape + hex32(weight), *head, *trees, *nodes, *leaves, "done", *rows,
             "end"]
    marked = [i for i, line in enumerate(lines) if isinstance(line, Bad)]
    return lines, marked[0] if marked else lines.index("done")


def bad_shape(shape):
    """The default records under a shape the core must reject at the forest record."""
    return records(shape=shape)[0], 0


def exact(*values) -> str:
    return "exact " + "".join(hex64(v) for v in values)


def value(v) -> str:
    return "value " + hex32(v)


NAN, INF = float("nan"), float("inf")
HARD, REG, F32 = (2, 1, 3, 3, 2, 3, 4), (3, 1, 3, 0, 2, 3, 4), (1, 2, 3, 3, 2, 3, 4)
SAMME, EXACT = (4, 1, 3, 3, 2, 3, 4), (5, 1, 3, 3, 2, 3, 4)
HARD_LEAVES = ["class 0", "class 1", "class 2", "class 1"]
REG_LEAVES = [value(1.5), value(-2), value(3.25), value(0)]
EXACT_LEAVES = [exact(1, 0, 0), exact(0, 1, 0), exact(0, 0, 1), exact(0.5, 0.5, 0)]
SUM = "sum " + hex64(2.5)
SAMME_TREES = ["tree 0 %s %s" % (hex64(1.5), hex64(-0.75)), "tree 2 %s %s" % (hex64(1.0), hex64(-0.5))]


def samme(**kw):
    kw.setdefault("head", [SUM])
    kw.setdefault("trees", SAMME_TREES)
    kw.setdefault("leaves", HARD_LEAVES)
    return records(shape=SAMME, **kw)


def samme_tree(root, vote, other):
    return Bad("tree %d %s %s" % (root, hex64(vote), hex64(other)))


INVALID = {
    # shapes
    "kind 0": (bad_shape((0, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "kind 7": (bad_shape((7, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "kind 6 (boosting) without groups": (bad_shape((6, 1, 3, 3, 2, 3, 4)), "BOOST_SHAPE"),
    "kind 257": (bad_shape((257, 1, 3, 3, 2, 3, 4)), "BAD_KIND"),
    "dtype 0": (bad_shape((1, 0, 3, 3, 2, 3, 4)), "BAD_DTYPE"),
    "dtype 3": (bad_shape((1, 3, 3, 3, 2, 3, 4)), "BAD_DTYPE"),
    "0 features": (bad_shape((1, 1, 0, 3, 2, 3, 4)), "TREES_N_FEATURES"),
    "32768 features": (bad_shape((1, 1, 32768, 3, 2, 3, 4)), "TREES_N_FEATURES"),
    "65536 features": (bad_shape((1, 1, 65536, 3, 2, 3, 4)), "TREES_N_FEATURES"),
    "soft, 0 classes": (bad_shape((1, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "hard, 0 classes": (bad_shape((2, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "samme, 0 classes": (bad_shape((4, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "exact, 0 classes": (bad_shape((5, 1, 3, 0, 2, 3, 4)), "BAD_N_CLASSES"),
    "65536 classes": (bad_shape((1, 1, 3, 65536, 2, 3, 4)), "BAD_N_CLASSES"),
    "regressor with classes": (bad_shape((3, 1, 3, 1, 2, 3, 4)), "BAD_N_CLASSES"),
    "regressor with 3 classes": (bad_shape((3, 2, 3, 3, 2, 3, 4)), "BAD_N_CLASSES"),
    "0 trees": (bad_shape((1, 1, 3, 3, 0, 3, 4)), "NO_TREES"),
    "0 leaves": (bad_shape((1, 1, 3, 3, 2, 3, 0)), "BAD_N_LEAVES"),
    "32769 leaves": (bad_shape((1, 1, 3, 3, 2, 3, 32769)), "BAD_N_LEAVES"),
    "2**32-1 leaves": (bad_shape((3, 1, 3, 0, 2, 3, UINT32_MAX)), "BAD_N_LEAVES"),
    "2**24+1 trees": (bad_shape((1, 1, 3, 3, MAX_NODES + 1, 3, 4)), "TOO_BIG"),
    "2**32-1 trees": (bad_shape((3, 2, 3, 0, UINT32_MAX, 3, 4)), "TOO_BIG"),
    "2**32-1 samme trees": (bad_shape((4, 2, 3, 2, UINT32_MAX, 3, 4)), "TOO_BIG"),
    "2**24+1 nodes": (bad_shape((1, 2, 3, 3, 2, MAX_NODES + 1, 4)), "TOO_BIG"),
    "2**32-1 nodes": (bad_shape((3, 1, 3, 0, 2, UINT32_MAX, 4)), "TOO_BIG"),
    "leaves * classes > 2**24": (bad_shape((1, 1, 3, 1000, 2, 3, 20000)), "TOO_BIG"),
    "exact leaves * classes > 2**24": (bad_shape((5, 1, 3, 1000, 2, 3, 20000)), "TOO_BIG"),
    "65535 classes, 257 leaves": (bad_shape((1, 1, 3, 65535, 2, 3, 257)), "TOO_BIG"),
    # tree records
    "root past the last node": (records(trees=["tree 0", Bad("tree 3")]), "NODE_REF_RANGE"),
    "root int32 max": (records(trees=[Bad("tree %d" % INT32_MAX), "tree 2"]), "NODE_REF_RANGE"),
    "root past the last leaf": (records(trees=["tree 0", Bad("tree -5")]), "LEAF_REF_RANGE"),
    "root int32 min": (records(trees=[Bad("tree %d" % INT32_MIN), "tree 2"]), "LEAF_REF_RANGE"),
    "too many trees": (records(trees=["tree 0", "tree 2", Bad("tree 1")]), "TOO_MANY_TREES"),
    "too few trees": (records(trees=["tree 0"]), "MISSING_TREES"),
    "no records at all": (records(trees=[], nodes=[], leaves=[]), "MISSING_TREES"),
    # SAMME votes and weight sum
    "samme vote NaN": (samme(trees=[SAMME_TREES[0], samme_tree(2, NAN, -0.5)]), "TREE_WEIGHT"),
    "samme vote inf": (samme(trees=[samme_tree(0, INF, -0.5), SAMME_TREES[1]]), "TREE_WEIGHT"),
    "samme vote negative": (samme(trees=[samme_tree(0, -1.0, -0.5), SAMME_TREES[1]]), "TREE_WEIGHT"),
    "samme other positive": (samme(trees=[samme_tree(0, 1.0, 0.5), SAMME_TREES[1]]), "TREE_WEIGHT"),
    "samme other -inf": (samme(trees=[samme_tree(0, 1.0, -INF), SAMME_TREES[1]]), "TREE_WEIGHT"),
    "samme root past the last leaf": (samme(trees=[samme_tree(-5, 1.0, -0.5), SAMME_TREES[1]]), "LEAF_REF_RANGE"),
    "samme weight sum 0": (samme(head=[Bad("sum " + hex64(0.0))]), "TREE_WEIGHT"),
    "samme weight sum -1": (samme(head=[Bad("sum " + hex64(-1.0))]), "TREE_WEIGHT"),
    "samme weight sum NaN": (samme(head=[Bad("sum " + hex64(NAN))]), "TREE_WEIGHT"),
    "samme weight sum inf": (samme(head=[Bad("sum " + hex64(INF))]), "TREE_WEIGHT"),
    "samme without weight sum": (samme(head=[]), "TREE_WEIGHT"),
    "weight sum of a soft forest": (records(head=[Bad(SUM)]), "TREE_WEIGHT"),
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
    "feature 32767 = n_features": (records(shape=(1, 1, MAX_FEATURES, 3, 2, 3, 4), nodes=[Bad("node 32767 10 1 -1")]),
                                   "FEATURE_RANGE"),
    "feature 32768 (the NaN bit)": (records(shape=(1, 2, MAX_FEATURES, 3, 2, 3, 4), nodes=[Bad("node 32768 00000000 1 -1 l")]),
                                    "FEATURE_RANGE"),
    "feature 65536 (uint16 wrap)": (records(shape=(1, 1, MAX_FEATURES, 3, 2, 3, 4), nodes=[Bad("node 65536 10 1 -1")]),
                                    "FEATURE_RANGE"),
    "feature 2**32-1": (records(nodes=[Bad("node %d 10 1 -1" % UINT32_MAX)]), "FEATURE_RANGE"),
    "int16 threshold 32768": (records(nodes=[Bad("node 0 32768 1 -1")]), "THRESHOLD_RANGE"),
    "int16 threshold -32769": (records(nodes=[Bad("node 0 -32769 1 -1")]), "THRESHOLD_RANGE"),
    "int16 threshold int32 max": (records(nodes=[Bad("node 0 %d 1 -1" % INT32_MAX)]), "THRESHOLD_RANGE"),
    "int16 threshold int32 min": (records(nodes=[Bad("node 0 %d 1 -1" % INT32_MIN)]), "THRESHOLD_RANGE"),
    "int16 node with a NaN direction": (records(nodes=[Bad("node 0 10 1 -1 l")]), "THRESHOLD_RANGE"),
    "too many nodes": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3", "node 2 0 -4 -1", Bad("node 0 0 -1 -1")]),
                       "TOO_MANY_NODES"),
    "too few nodes": (records(nodes=["node 0 10 1 -1", "node 1 -5 -2 -3"]), "MISSING_NODES"),
    # count leaves (soft voting)
    "counts leaf of 2": (records(leaves=["counts 1 0 0", Bad("counts 0 1")]), "LEAF_WIDTH"),
    "counts leaf of 4": (records(leaves=[Bad("counts 1 0 0 0")]), "LEAF_WIDTH"),
    "empty counts leaf": (records(leaves=[Bad("counts")]), "LEAF_WIDTH"),
    "counts all 0": (records(leaves=["counts 1 0 0", Bad("counts 0 0 0")]), "LEAF_COUNTS"),
    "counts leaf in a hard forest": (records(shape=HARD, leaves=[Bad("counts 1 0 0")]), "LEAF_WIDTH"),
    "counts leaf in an exact forest": (records(shape=EXACT, leaves=[Bad("counts 1 0 0")]), "LEAF_WIDTH"),
    "too many leaves": (records(leaves=SOFT_LEAVES + [Bad("counts 1 0 0")]), "TOO_MANY_LEAVES"),
    "too few leaves": (records(leaves=SOFT_LEAVES[:3]), "MISSING_LEAVES"),
    # float64 leaves (soft voting)
    "exact leaf of 2": (records(shape=EXACT, leaves=[exact(1, 0, 0), Bad(exact(0, 1))]), "LEAF_WIDTH"),
    "exact leaf of 4": (records(shape=EXACT, leaves=[Bad(exact(1, 0, 0, 0))]), "LEAF_WIDTH"),
    "empty exact leaf": (records(shape=EXACT, leaves=[Bad("exact")]), "LEAF_WIDTH"),
    "exact leaf one digit short": (records(shape=EXACT, leaves=[Bad(exact(1, 0, 0)[:-1])]), "LEAF_WIDTH"),
    "exact leaf bad hex": (records(shape=EXACT, leaves=[Bad(exact(1, 0, 0)[:-1] + "g")]), "BAD_HEX64"),
    "exact leaf 0x": (records(shape=EXACT, leaves=[Bad("exact 0x" + exact(1, 0, 0)[8:])]), "BAD_HEX64"),
    "exact leaf NaN": (records(shape=EXACT, leaves=[Bad(exact(NAN, 0, 0))]), "LEAF_PROBA"),
    "exact leaf inf": (records(shape=EXACT, leaves=[Bad(exact(0, INF, 0))]), "LEAF_PROBA"),
    "exact leaf above 1": (records(shape=EXACT, leaves=[Bad(exact(0, 0, np.nextafter(1.0, 2.0)))]), "LEAF_PROBA"),
    "exact leaf negative": (records(shape=EXACT, leaves=[Bad(exact(0, -1e-300, 1))]), "LEAF_PROBA"),
    "exact leaf in a soft counts forest": (records(leaves=[Bad(exact(1, 0, 0))]), "LEAF_WIDTH"),
    # class leaves (hard voting, SAMME)
    "class leaf in a soft forest": (records(leaves=[Bad("class 0")]), "LEAF_WIDTH"),
    "class leaf in a regressor": (records(shape=REG, leaves=[Bad("class 0")]), "LEAF_WIDTH"),
    "hard class = n_classes": (records(shape=HARD, leaves=["class 0", Bad("class 3")]), "CLASS_RANGE"),
    "samme class = n_classes": (samme(leaves=["class 0", Bad("class 3")]), "CLASS_RANGE"),
    "hard class 65535 of 65535": (records(shape=(2, 1, 3, 65535, 2, 3, 4), leaves=[Bad("class 65535")]),
                                  "CLASS_RANGE"),
    "hard class 65536": (records(shape=(2, 1, 3, 65535, 2, 3, 4), leaves=[Bad("class 65536")]), "CLASS_RANGE"),
    "hard class 2**32-1": (records(shape=HARD, leaves=[Bad("class %d" % UINT32_MAX)]), "CLASS_RANGE"),
    # value leaves (regressors)
    "value leaf in a soft forest": (records(leaves=[Bad(value(1.0))]), "LEAF_WIDTH"),
    "value leaf in a hard forest": (records(shape=HARD, leaves=[Bad(value(0.0))]), "LEAF_WIDTH"),
    "regressor leaf NaN": (records(shape=REG, leaves=[value(1), Bad(value(NAN))]), "NOT_FINITE"),
    "regressor leaf inf": (records(shape=REG, leaves=[Bad(value(INF))]), "NOT_FINITE"),
    "regressor leaf -inf": (records(shape=REG, leaves=[Bad(value(-INF))]), "NOT_FINITE"),
    "regressor leaf signalling NaN": (records(shape=REG, leaves=[Bad("value 7f800001")]), "NOT_FINITE"),
    "regressor leaf negative NaN": (records(shape=REG, leaves=[Bad("value ffffffff")]), "NOT_FINITE"),
    # float32 thresholds
    "float32 threshold quiet NaN": (records(shape=F32, nodes=[Bad("node 0 7fc00000 1 -1 r")]), "NAN"),
    "float32 threshold negative NaN": (records(shape=F32, nodes=[Bad("node 0 ffc00000 1 -1 l")]), "NAN"),
    "float32 threshold signalling NaN": (records(shape=F32, nodes=[Bad("node 0 7f800001 1 -1 r")]), "NAN"),
    "float32 threshold NaN ffffffff": (records(shape=F32, nodes=[Bad("node 0 FFFFFFFF 1 -1 r")]), "NAN"),
    "float32 threshold 7 digits": (records(shape=F32, nodes=[Bad("node 0 3f80000 1 -1 r")]), "BAD_HEX"),
    "float32 threshold 9 digits": (records(shape=F32, nodes=[Bad("node 0 3f8000000 1 -1 r")]), "BAD_HEX"),
    "float32 threshold 0x": (records(shape=F32, nodes=[Bad("node 0 0x3f8000 1 -1 r")]), "BAD_HEX"),
    "float32 threshold decimal": (records(shape=F32, nodes=[Bad("node 0 1.500000 1 -1 r")]), "BAD_HEX"),
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
    """The StoredForest of a forest in the driver's format (absolute child indices), with the
    forest record's tree weight."""
    shape, trees, votes, nodes, leaves, weight_sum = None, [], [], [], [], None
    for line in lines:
        tag, *f = line.split()
        if tag == "forest":
            shape = [int(v) for v in f[:7]] + [f32(int(f[7], 16))]
        elif tag == "sum":
            weight_sum = f64(f[0])
        elif tag == "tree":
            trees.append(int(f[0]))
            votes.append([f64(f[1]), f64(f[2])] if len(f) == 3 else [0.0, 0.0])
        elif tag == "node":
            nan = f[4] if len(f) == 5 else "0"
            nodes.append((int(f[0]), f[1], int(f[2]), int(f[3]), nan in ("l", "1")))
        elif tag == "counts":
            leaves.append([int(v) for v in f])
        elif tag == "exact":
            leaves.append([f64(f[0][i:i + 16]) for i in range(0, len(f[0]), 16)])
        elif tag == "class":
            leaves.append([int(f[0])])
        elif tag == "value":
            leaves.append([float(f32(int(f[0], 16)))])
    kind, dtype, n_features, n_classes, _, _, _, weight = shape
    voting, leaf_kind = KIND_OF_CODE[kind]
    stored = RawStoredForest(
        kind="regressor" if kind == 3 else "classifier", voting=voting, leaf_kind=leaf_kind,
        dtype="int16" if dtype == 1 else "float32", n_features=n_features, n_classes=n_classes,
        roots=np.array(trees, dtype=np.int64),
        feature=np.array([n[0] for n in nodes], dtype=np.int64),
        threshold=(np.array([int(n[1], 16) for n in nodes], dtype=np.uint32).view(np.float32) if dtype == 2
                   else np.array([int(n[1]) for n in nodes], dtype=np.int64)),
        left=np.array([i + n[2] if n[2] > 0 else n[2] for i, n in enumerate(nodes)], dtype=np.int64),
        right=np.array([i + n[3] if n[3] > 0 else n[3] for i, n in enumerate(nodes)], dtype=np.int64),
        nan_left=np.array([n[4] for n in nodes], dtype=bool),
        leaves=np.array(leaves, dtype=np.int64 if leaf_kind in ("counts", "class") else np.float64).reshape(
            len(leaves), -1),
        tree_votes=np.array(votes, dtype=np.float64).reshape(-1, 2) if voting == "samme" else None,
        weight_sum=weight_sum)
    stored.weight = weight
    return stored


@dataclass
class RawStoredForest(StoredForest):
    """A StoredForest with the tree weight of its forest record (which need not be 1 / n_trees)."""

    weight: np.float32 = field(default=np.float32(0))

    @property
    def tree_weight(self) -> np.float32:
        return self.weight


VALID = {
    "default": records(rows=["row 10 -5 0", "row 11 0 1", "row -32768 32767 -1"])[0],
    "boundaries": records(
        shape=(1, 1, MAX_FEATURES, 3, 3, 3, 4),
        trees=["tree -4", "tree 2", "tree 0"],
        nodes=["node 32766 32767 2 -4", "node 1 -32768 -2 -3", "node 0 -1 -4 -1"],
        rows=["row " + " ".join(["-32768"] * MAX_FEATURES), "row " + " ".join(["32767"] * MAX_FEATURES)])[0],
    "float32 infinite thresholds": records(
        shape=F32, nodes=["node 0 7f800000 1 -1 r", "node 1 ff800000 -2 -3 l", "node 2 80000000 -4 -1 l"],
        rows=[row_text("float32", r) for r in ([INF, -INF, 0.0], [NAN, -INF, -0.0], [1e38, 1.0, NAN],
                                                [NAN, NAN, NAN], [-INF, NAN, 1.0])])[0],
    "float32 NaN directions": records(
        shape=F32, nodes=["node 0 41200000 1 -1 l", "node 1 c0a00000 -2 -3 r", "node 2 00000000 -4 -1 r"],
        rows=[row_text("float32", r) for r in ([NAN, NAN, NAN], [NAN, -6.0, NAN], [11.0, NAN, 0.0])])[0],
    "hard vote": records(shape=HARD, leaves=HARD_LEAVES, rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0"])[0],
    "hard vote, class 65534 of 65535": records(
        shape=(2, 1, 3, 65535, 2, 3, 4), leaves=["class 65534", "class 0", "class 65534", "class 7"],
        rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0"])[0],
    "samme": samme(rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0", "row -32768 32767 -1"])[0],
    "samme, one class": records(shape=(4, 1, 3, 1, 2, 3, 4), head=["sum " + hex64(1.0)],
                                trees=["tree 0 %s %s" % (hex64(0.5), hex64(0.0)), "tree 2 %s %s" % (hex64(0.5), hex64(0.0))],
                                leaves=["class 0"] * 4, rows=["row 10 -5 0"])[0],
    "samme, two classes": records(shape=(4, 1, 3, 2, 2, 3, 4), head=["sum " + hex64(3.0)],
                                  trees=["tree 0 %s %s" % (hex64(2.0), hex64(-2.0)),
                                         "tree 2 %s %s" % (hex64(1.0), hex64(-1.0))],
                                  leaves=["class 0", "class 1", "class 1", "class 0"],
                                  rows=["row 10 -5 0", "row 11 0 1", "row 0 0 0", "row 0 -10 10"])[0],
    "exact leaves": records(shape=EXACT, leaves=EXACT_LEAVES, rows=["row 10 -5 0", "row 11 0 1", "row -32768 32767 -1"])[0],
    "exact leaves, subnormal and one-third": records(
        shape=EXACT, leaves=[exact(1 / 3, 2 / 3, 0), exact(5e-324, 1 - 5e-324, 0), exact(0, 0, 1), exact(1 / 3, 1 / 3, 1 / 3)],
        rows=["row 10 -5 0", "row 11 0 1", "row 10 -4 1", "row 0 0 0"])[0],
    "regressor": records(shape=REG, weight=0.25, leaves=REG_LEAVES, rows=["row 10 -5 0", "row 11 0 1"])[0],
    "regressor, huge leaves": records(
        shape=REG, leaves=[value(3e38), value(-3e38), value(3.4028235e38), value(-0.0)],
        rows=["row 10 -5 0", "row 11 0 1", "row 10 -4 1"])[0],
    "soft, counts at the limit": records(leaves=["counts 65535 1 0", "counts 0 65535 65535", "counts 0 0 1",
                                                 "counts 65535 65535 65535"],
                                         rows=["row 10 -5 0", "row 11 0 1", "row 10 0 0"])[0],
}


@pytest.mark.parametrize("case", list(VALID))
def test_accepts_valid_forest(driver, case):
    lines = VALID[case]
    stored = stored_of(lines)
    if stored.dtype == "float32":
        rows = np.array([[f32(int(v, 16)) for v in line.split()[1:]] for line in lines if line.startswith("row ")])
    else:
        rows = np.array([[int(v) for v in line.split()[1:]] for line in lines if line.startswith("row ")])
    proc = run(driver, "\n".join([layout_line(stored)] + lines) + "\n")
    assert proc.returncode == 0, proc.out[-1:]
    assert proc.out[0] == "bytes %d" % stored.ram_bytes() and proc.out[1] == "ready"
    assert_predictions(stored, rows, proc.out[2:-1], case)


def test_default_forest_by_hand(driver):
    """The default forest's predictions worked out by hand (independent of the numpy mirror)."""
    lines = VALID["default"]
    proc = run(driver, "\n".join([layout_line(stored_of(lines))] + lines) + "\n")
    # (10, -5, 0): tree 0 -> node 1 -> leaf 1, tree 1 -> leaf 3: (0 + .5, 1 + .5, 0) / 2
    # (11, 0, 1): leaf 0 twice; (-32768, 32767, -1): leaf 2 and leaf 3: (.5, .5, 1) / 2
    # bytes: roots 8, int8 thresholds 4, 1-byte features 4, left 8, right 8, 6 pairs of 2 bytes 12,
    # 2 distinct totals (2 and 1) with their scales 16, sums 12
    assert proc.out == ["bytes 72", "ready", "1 3e800000 3f400000 00000000",
                        "0 3f800000 00000000 00000000", "2 3e800000 3e800000 3f000000", "end"]


def test_samme_by_hand(driver):
    """SAMME decisions worked out by hand: per class, the sum of each tree's vote for its class and
    `other` for the rest, divided by the weight sum 2.5; the largest wins (lowest index on ties)."""
    proc = run(driver, "\n".join(VALID["samme"]) + "\n")
    # (10, -5, 0): tree 0 -> leaf 1 (class 1), tree 1 -> leaf 3 (class 1): class 1 gets 1.5 + 1.0.
    # (11, 0, 1): leaf 0 twice (class 0). (0, 0, 0): leaf 2 (class 2, 1.5) and leaf 3 (class 1, 1.0): class 2.
    # (-32768, 32767, -1): leaf 2 (class 2) and leaf 3 (class 1): class 2.
    assert [line.split()[0] for line in proc.out[2:-1]] == ["1", "0", "2", "2"]


@pytest.mark.parametrize("shape", [
    (1, 1, MAX_FEATURES, 3, 2, 3, 4), (3, 2, 1, 0, 1, 0, 32768), (2, 1, 1, 65535, 1, 0, 256),
    (2, 1, 1, 65535, 1, 0, 32768), (4, 1, 1, 65535, 7, 3, 32768), (5, 2, 1, 1000, 1, 0, 16777),
    (2, 1, 1, 1000, 1, 0, 16777), (1, 2, 1, 65535, 1, 0, 256), (1, 1, 1, 1, 1, 0, 32768),
    (3, 1, 1, 0, MAX_NODES, MAX_NODES, 1), (1, 2, 7, 1000, 5, MAX_NODES, 16777), (2, 2, 3, 5, 1, 1, 1),
    (4, 2, 3, 2, MAX_NODES, 1, 1),
])
def test_shape_limits_and_bytes(driver, shape):
    """Shapes at the limits are accepted, and mpyml_forest_bytes is the documented size
    (docs/formats.md, "Device memory")."""
    kind, dtype, n_features, n_classes, n_trees, n_nodes, n_leaves = shape

    def align4(n):
        return (n + 3) & ~3

    narrow = n_features <= (128 if dtype == 2 else 256)
    want = align4(4 * n_trees) + align4((4 if dtype == 2 else 2) * n_nodes) + align4((1 if narrow else 2) * n_nodes)
    want += 2 * align4(2 * n_nodes)
    layout = ""
    if kind == 1:  # room for every class of every leaf, within the pair limit; 32-bit pairs
        n_pairs = max(n_leaves, min(n_leaves * n_classes, 32768))
        max_count = 65535 if n_classes < 32768 else 32767
        layout = "layout %d %d %d %d\n" % (4 if dtype == 2 else 2, n_pairs, max_count, n_leaves)
    want += {1: align4(4 * n_pairs) + 8 * n_leaves if kind == 1 else 0,  # pairs, totals and their scales
             2: align4(2 * n_leaves),                                      # class per leaf
             3: 4 * n_leaves,                                              # float32 value per leaf
             4: align4(2 * n_leaves) + 16 * n_trees + 8 * n_classes,       # class per leaf, votes, sums
             5: 8 * n_leaves * n_classes}[kind]                            # float64 probabilities
    want += 4 * max(n_classes, 1)
    proc = run(driver, layout + "shape %d %d %d %d %d %d %d\n" % shape)
    assert proc.returncode == 0 and proc.out == ["shape %d" % want]


# ---------------------------------------------------------------- random garbage


def _f64_of(text: str):
    return f64(text) if re.fullmatch(r"[0-9a-fA-F]{16}", text) else None


class Reference:
    """Replays one forest's records as the core must validate them: codes() gives the error codes
    a record may be rejected with (every check it fails; empty when it must be accepted)."""

    def __init__(self):
        self.shape = None
        self.counts = [0, 0, 0]
        self.weight_sum = None

    def codes(self, tag, args) -> set[str]:
        if tag == "forest":
            kind, dtype, nf, nc, nt, nn, nl = args[:7]
            self.shape = args[:7]
            bad = set()
            if kind == 6:  # boosting: a forest record without the three boosting fields has n_groups 0
                return {"BOOST_SHAPE"}
            if kind == 1 and 32768 < nc <= 65535:  # the driver's default max_count 65535: pairs past 32 bits
                bad.add("LEAF_PAIRS")
            if kind not in (1, 2, 3, 4, 5):
                bad.add("BAD_KIND")
            if dtype not in (1, 2):
                bad.add("BAD_DTYPE")
            if not 1 <= nf <= MAX_FEATURES:
                bad.add("TREES_N_FEATURES")
            if nc > 65535 or (nc != 0 if kind == 3 else nc < 1):
                bad.add("BAD_N_CLASSES")
            if nt < 1:
                bad.add("NO_TREES")
            if not 1 <= nl <= 32768:
                bad.add("BAD_N_LEAVES")
            if nt > MAX_NODES or nn > MAX_NODES or (kind in (1, 5) and 0 < nc <= 65535 and nl > MAX_NODES // nc):
                bad.add("TOO_BIG")
            return bad
        kind, dtype, nf, nc, nt, nn, nl = self.shape
        if tag == "sum":
            s = f64(args[0])
            if kind != 4 or not math.isfinite(s) or not s > 0:
                return {"TREE_WEIGHT"}
            self.weight_sum = s
            return set()
        if tag == "tree":
            bad = {"TOO_MANY_TREES"} if self.counts[0] >= nt else set()
            root = args[0]
            if root >= nn if root >= 0 else -(root + 1) >= nl:
                bad.add("NODE_REF_RANGE" if root >= 0 else "LEAF_REF_RANGE")
            if kind == 4:
                vote, other = (f64(v) for v in args[1:]) if len(args) == 3 else (0.0, 0.0)
                if not (math.isfinite(vote) and math.isfinite(other) and vote >= 0 and other <= 0):
                    bad.add("TREE_WEIGHT")
            if not bad:
                self.counts[0] += 1
            return bad
        if tag == "node":
            feature, threshold, left, right, nan = args
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
            elif not -32768 <= int(threshold) <= 32767 or nan == "l":
                bad.add("THRESHOLD_RANGE")
            if not bad:
                self.counts[1] += 1
            return bad
        if tag in ("counts", "exact", "class", "value"):
            bad = {"TOO_MANY_LEAVES"} if self.counts[2] >= nl else set()
            if tag == "counts":
                if kind != 1 or len(args) != nc:
                    bad.add("LEAF_WIDTH")
                elif sum(args) == 0:
                    bad.add("LEAF_COUNTS")
            elif tag == "exact":
                text = args[0] if args else ""
                if kind != 5 or len(text) != 16 * nc:
                    bad.add("LEAF_WIDTH")
                else:
                    values = [_f64_of(text[i:i + 16]) for i in range(0, len(text), 16)]
                    if None in values:
                        bad.add("BAD_HEX64")
                    elif not all(0.0 <= p <= 1.0 for p in values):
                        bad.add("LEAF_PROBA")
            elif tag == "class":
                if kind not in (2, 4):
                    bad.add("LEAF_WIDTH")
                elif args[0] >= nc:
                    bad.add("CLASS_RANGE")
            else:
                if kind != 3:
                    bad.add("LEAF_WIDTH")
                elif not np.isfinite(f32(args[0])):
                    bad.add("NOT_FINITE")
            if not bad:
                self.counts[2] += 1
            return bad
        assert tag == "done"
        bad = {name for name, count, total in zip(("MISSING_TREES", "MISSING_NODES", "MISSING_LEAVES"),
                                                  self.counts, (nt, nn, nl)) if count != total}
        if kind == 4 and self.weight_sum is None:
            bad.add("TREE_WEIGHT")
        return bad


def random_forest_records(rng: np.random.Generator, chaos: bool):
    """One random forest as (tag, args) records: mostly plausible with a few garbage fields,
    or (chaos) any records in any order with values from wide ranges."""

    def garbage(p=0.03):
        return rng.random() < (0.5 if chaos else p)

    def bad_shape():
        return rng.random() < (0.08 if chaos else 0.02)

    def pick(values):
        return values[rng.integers(len(values))]

    kind = int(rng.integers(1, 6)) if not bad_shape() else pick([0, 6, 255, 256, 2**31])
    dtype = int(rng.integers(1, 3)) if not bad_shape() else pick([0, 3, 256])
    nf = int(rng.integers(1, 5)) if not bad_shape() else pick([0, 32767, 32768, 65536, UINT32_MAX])
    nc = (0 if kind == 3 else int(rng.integers(1, 5))) if not bad_shape() else pick([0, 1, 65535, 65536, UINT32_MAX])
    nt = int(rng.integers(1, 5)) if not bad_shape() else pick([0, MAX_NODES + 1, UINT32_MAX])
    nn = int(rng.integers(0, 12)) if not bad_shape() else pick([MAX_NODES + 1, UINT32_MAX])
    nl = int(rng.integers(1, 7)) if not bad_shape() else pick([0, 32769, UINT32_MAX])
    nt_, nn_, nl_ = (min(v, 12) for v in (nt, nn, nl))
    nc_ = min(nc, 8)
    weight = int(bits32(1.0 / max(nt, 1))[0]) if rng.random() < 0.85 else pick(
        [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc12345, 0x7f7fffff, int(rng.integers(0, 2**32))])
    recs = [("forest", (kind, dtype, nf, nc, nt, nn, nl, weight))]

    def float64_text(good: float) -> str:
        if garbage():
            return pick([hex64(NAN), hex64(INF), hex64(-INF), hex64(-good - 1), hex64(0.0), hex64(-0.0),
                         "%016x" % int(rng.integers(0, 2**63)), hex64(5e-324)])
        return hex64(good)

    if kind == 4 or garbage(0.01):
        recs.append(("sum", (float64_text(float(rng.uniform(0.5, 5))),)))

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
        if kind == 4:
            vote = float(rng.uniform(0, 3))
            recs.append(("tree", (root, float64_text(vote), float64_text(-vote / max(nc - 1, 1)))))
        else:
            recs.append(("tree", (root,)))
    for i in range(count(nn_)):
        feature = int(rng.integers(0, max(1, min(nf, 8)))) if not garbage() else pick(
            [nf, 32767, 32768, 65535, 65536, UINT32_MAX, int(rng.integers(0, 2**32))])
        if dtype == 2:
            if garbage():
                threshold = pick(["7fc00000", "ffc00000", "7f800001", "FFFFFFFF", "%08x" % rng.integers(0, 2**32),
                                  "7f80000", "0x7f8000", "7f8000000", "zzzzzzzz", "-1000000"])
            else:
                threshold = hex32(np.float32(rng.normal() * pick([1, 4, 1e-3])))
            nan = pick(["l", "r"])
        else:
            if garbage():
                threshold = str(pick([32768, -32769, INT32_MAX, INT32_MIN, int(rng.integers(INT32_MIN, INT32_MAX))]))
            else:
                threshold = str(int(rng.integers(-6, 7)) if rng.random() < 0.9 else pick([-32768, 32767]))
            nan = "l" if garbage() else "r"
        recs.append(("node", (feature, threshold, ref(i), ref(i), nan)))
    leaf_tag = {1: "counts", 2: "class", 3: "value", 4: "class", 5: "exact"}.get(kind, "value")
    for _ in range(count(nl_)):
        tag = leaf_tag if not garbage() else pick(["counts", "exact", "class", "value"])
        width = nc_ if not garbage() else int(rng.integers(0, 6))
        if tag == "counts":
            counts = [int(c) for c in rng.integers(0, 4, width)]
            if garbage():
                counts = [pick([0, 65535, int(rng.integers(0, 65536))]) for _ in counts]
            recs.append(("counts", tuple(counts)))
        elif tag == "exact":
            p = rng.dirichlet(np.ones(max(width, 1)))[:width] if width else []
            text = "".join(float64_text(float(v)) for v in p)
            if garbage(0.02):
                text = text[:-1] + pick(["g", "-", "x"]) if text else "zz"
            recs.append(("exact", (text,) if text else ()))
        elif tag == "class":
            recs.append(("class", (int(rng.integers(0, max(1, nc_))) if not garbage() else pick(
                [nc, 65535, 65536, UINT32_MAX]),)))
        else:
            bits = int(bits32(rng.normal() * 10)[0]) if not garbage() else pick(
                [0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff, 0x7f800001, 0x7f7fffff, 0x80000000, 1,
                 int(rng.integers(0, 2**32))])
            recs.append(("value", (bits,)))
    if chaos or rng.random() < 0.05:
        order = rng.permutation(len(recs) - 1) + 1
        recs = recs[:1] + [recs[i] for i in order]
    if rng.random() < 0.97:
        recs.append(("done", ()))
    return recs


def record_line(tag, args) -> str:
    if tag == "forest":
        return "forest %d %d %d %d %d %d %d %08x" % args
    if tag == "value":
        return "value %08x" % args[0]
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
    special = rng.random((n, nf)) < 0.1
    rows[special] = rng.choice(np.array([np.inf, -np.inf, np.nan, -0.0], dtype=np.float32), special.sum())
    return rows


def test_fuzz_random_garbage(driver, driver_o2):
    """A few thousand random records, some garbage: every forest is accepted or rejected at the
    record and with a code the reference validator expects, nothing upsets ASan or UBSan, and
    every accepted forest predicts what the numpy mirror predicts (with the -O0 and -O2 builds)."""
    rng = np.random.default_rng(SEED)
    lines, forests = [], []
    n_records = 0
    for i in range(900):
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
    assert n_records > 4000
    n_accepted = sum(f[0] is None and f[3] for f in forests)
    n_rejected = sum(f[0] is not None for f in forests)
    kinds_accepted = {int(f[2][0].split()[1]) for f in forests if f[0] is None and f[3]}
    assert n_accepted > 150 and n_rejected > 150, (n_accepted, n_rejected)
    assert kinds_accepted == {1, 2, 3, 4, 5}
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
            assert out[:2] == ["bytes %d" % default_layout_bytes(stored), "ready"]
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


def f64_bits(value: float) -> int:
    return int(np.float64(value).view(np.uint64))


def test_f64_div_is_correctly_rounded(driver):
    """mpyml_f64_div (double division by long division in integers) gives exactly Python's
    float division for finite a and finite b > 0: random operands, random bit patterns
    (subnormals among them), powers of two, the largest and smallest doubles, equal
    operands, and quotients that overflow to infinity or round into the subnormal range."""
    rng = np.random.default_rng(SEED)
    tiny, smallest_normal, largest = 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308
    edges = [tiny, 2 * tiny, 3 * tiny, smallest_normal, np.nextafter(smallest_normal, 0), largest,
             np.nextafter(largest, 0), 1.0, np.nextafter(1.0, 2), np.nextafter(1.0, 0), 3.0, 0.1, 1 / 3,
             2.0**-1022, 2.0**-1074, 2.0**1023, 0.5, 7.0, 10.0, 1e-300, 1e300, 65535.0, 65536.0]
    edges += [2.0**k for k in range(-1074, 1024, 37)]
    pairs = [(a, b) for a in edges for b in edges]
    pairs += [(-a, b) for a, b in pairs[:200]] + [(0.0, 1.0), (-0.0, 3.0), (0.0, tiny)]
    pairs += [(float(a), float(a)) for a in rng.uniform(0, 10, 200)]  # equal operands: exactly 1
    pairs += [(float(a), float(b)) for a, b in rng.uniform(0, 1, size=(3000, 2)) if b > 0]
    pairs += [(float(a) * 2.0**int(e), float(b)) for a, b, e in
              zip(rng.uniform(0, 1, 2000), rng.uniform(1, 65536, 2000), rng.integers(-1074, 1024, 2000)) if a > 0]
    random_bits = rng.integers(0, 0x7ff0000000000000, size=(4000, 2), dtype=np.int64).view(np.float64)
    pairs += [(float(a), float(b)) for a, b in random_bits if b > 0]
    # Quotients near the subnormal boundary and ties at the subnormal rounding point.
    pairs += [(float(a) * 2.0**-1000, float(b) * 2.0**60) for a, b in rng.uniform(1, 2, size=(1000, 2))]
    pairs += [(3 * tiny, 2.0), (5 * tiny, 2.0), (7 * tiny, 4.0), (smallest_normal, 2.0), (smallest_normal, 3.0)]
    text = "".join("div %016x %016x\n" % (f64_bits(a), f64_bits(b)) for a, b in pairs)
    proc = run(driver, text, "helpers")
    assert proc.returncode == 0
    assert len(proc.out) == len(pairs)
    with np.errstate(over="ignore"):
        for (a, b), line in zip(pairs, proc.out):
            want = np.float64(a) / np.float64(b)  # IEEE division, infinity on overflow
            assert line == "%016x" % f64_bits(want), (a, b, line, want)
