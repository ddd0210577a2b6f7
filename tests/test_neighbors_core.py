"""The portable k-NN core (natmods/common/mpyml_neighbors.h) built for the host under ASan and UBSan.

tests/c/neighbors_driver.c feeds it models in a small line format of its own.
Checked: the search, vote, distances and score bit for bit against
StoredNeighbors' numpy mirror on random models (both dtypes, all metrics and
weights, int16 values over the whole range); the float helpers (reciprocal,
square root, uint64 to float32) against the mirror bit for bit and against
numpy's exact results within 1 ulp; the float64 helpers of the near-tie vote
(square, square root, integer square root) bit for bit against correctly rounded
results; the vote on constructed near-ties against scikit-learn and the mirror;
every error code; random operation sequences never tripping the sanitizers.
"""

from __future__ import annotations

import math
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from c_errors import error_codes
from mpyml import neighbors
from mpyml.neighbors import StoredNeighbors
from neighbors_device import near_tie_scenes

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER = ROOT / "tests" / "c" / "neighbors_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(COMMON)]
DTYPES = {"int16": 1, "float32": 2}
METRICS = {"euclidean": 1, "manhattan": 2, "chebyshev": 3}
WEIGHTS = {"uniform": 1, "distance": 2}


CODE = error_codes()


@pytest.fixture(scope="session", params=["-O0", "-O2"])
def driver(request, tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("nb_core") / "neighbors_driver"
    proc = subprocess.run(["gcc", *CFLAGS, request.param, "-o", str(exe), str(DRIVER)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def run(exe: Path, text: str, *args: str) -> list[str]:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([str(exe), *args], input=text.encode(), capture_output=True, timeout=120, env=env)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0 and "runtime error" not in stderr and "Sanitizer" not in stderr, stderr[-3000:]
    return proc.stdout.decode().splitlines()


def row_text(dtype: str, row) -> str:
    if dtype == "float32":
        return " ".join("%08x" % b for b in np.asarray(row, dtype=np.float32).view(np.uint32))
    return " ".join(str(int(v)) for v in row)


def model_lines(stored: StoredNeighbors, queries) -> list[str]:
    lines = ["shape %d %d %d %d %d %d" % (DTYPES[stored.dtype], METRICS[stored.metric], WEIGHTS[stored.weights],
                                         stored.n_features, stored.n_items, stored.k)]
    labels = stored.labels if stored.labels is not None else np.zeros(stored.n_items, dtype=np.int64)
    lines += ["add %d %s" % (label, row_text(stored.dtype, row)) for label, row in zip(labels, stored.items)]
    lines += ["query " + row_text(stored.dtype, q) for q in queries]
    lines.append("end")
    return lines


def random_model(rng, dtype, metric, weights):
    n_features = int(rng.choice([1, 3, 8, 17, 64, 130]))
    n_items = int(rng.integers(1, 60))
    k = int(rng.integers(1, n_items + 1))
    n_classes = int(rng.integers(1, 6))
    spread = int(rng.choice([3, 100, 32767]))  # small values give many exact distance ties
    if dtype == "int16":
        items = rng.integers(-spread - 1, spread + 1, size=(n_items, n_features))
        queries = rng.integers(-spread - 1, spread + 1, size=(8, n_features))
        queries[0] = 32767
        queries[1] = -32768
        items = np.clip(items, -32768, 32767)
        queries = np.clip(queries, -32768, 32767)
    else:
        scale = float(rng.choice([1e-30, 1.0, 1e3, 1e19]))
        items = (rng.normal(size=(n_items, n_features)) * scale).astype(np.float32)
        items[rng.random(items.shape) < 0.1] = 0.0
        queries = (rng.normal(size=(8, n_features)) * scale).astype(np.float32)
        queries[0] = items[0]  # a zero distance
    labels = rng.integers(0, n_classes, size=n_items)
    stored = StoredNeighbors("classifier", dtype, metric, weights, k, items, labels, n_classes)
    return stored, queries


def test_random_models_match_the_numpy_mirror(driver):
    rng = np.random.default_rng(5)
    cases = []
    for dtype in DTYPES:
        for metric in METRICS:
            for weights in WEIGHTS:
                for _ in range(4):
                    cases.append(random_model(rng, dtype, metric, weights))
    lines = []
    for stored, queries in cases:
        lines += model_lines(stored, queries)
    out = run(driver, "\n".join(lines) + "\n")
    blocks, block = [], []
    for line in out:
        if line == "end":
            blocks.append(block)
            block = []
        else:
            block.append(line)
    assert len(blocks) == len(cases)
    for (stored, queries), block in zip(cases, blocks):
        what = (stored.dtype, stored.metric, stored.weights, stored.n_items, stored.n_features, stored.k)
        assert block[0] == "bytes %d" % stored.ram_bytes(), what
        assert block[1:1 + stored.n_items] == ["ok"] * stored.n_items, what
        keys = stored.keys(queries)
        dist, index = stored.kneighbors(queries)
        pred = stored.predict_index(queries)
        score = stored.score(queries)
        for r, line in enumerate(block[1 + stored.n_items:]):
            label, key_text, index_text, dist_text, score_text = [p.strip() for p in line.split("|")]
            assert int(label) == pred[r], (what, r)
            assert [int(v) for v in index_text.split()] == index[r].tolist(), (what, r)
            assert [int(v) for v in key_text.split()] == keys[r][index[r]].tolist(), (what, r)
            assert dist_text.split() == ["%08x" % b for b in dist[r].view(np.uint32)], (what, r)
            assert score_text == "%08x" % np.float32(score[r]).view(np.uint32), (what, r)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def test_float_helpers_match_mirror_and_are_within_one_ulp(driver):
    rng = np.random.default_rng(11)
    bits = np.concatenate([
        rng.integers(1, 0x7F800000, size=4000, dtype=np.uint32),            # every positive finite float
        np.array([1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0, 0x7F800000, 0x7FC00000, 0x80000000], dtype=np.uint32),
    ])
    values = bits.view(np.float32)
    text = "".join("recip %08x\nsqrt %08x\n" % (b, b) for b in bits)
    ints = np.concatenate([rng.integers(0, 2**63, size=2000, dtype=np.uint64),
                           np.array([0, 1, 2**24 - 1, 2**24, 2**24 + 1, 2**25 + 3, 2**63 - 1, 0x1FFFFFF7FFFFFFFF], dtype=np.uint64),
                           (rng.integers(0, 2**20, size=500, dtype=np.uint64) * 65535**2)])
    text += "".join("u64 %d\n" % v for v in ints)
    out = run(driver, text, "helpers")
    got = np.array([int(v, 16) for v in out], dtype=np.uint32)
    got_recip = got[0:2 * len(bits):2].view(np.float32)
    got_sqrt = got[1:2 * len(bits):2].view(np.float32)
    got_u64 = got[2 * len(bits):].view(np.float32)
    np.testing.assert_array_equal(got_recip.view(np.uint32), neighbors.recip(values).view(np.uint32))
    np.testing.assert_array_equal(got_sqrt.view(np.uint32), neighbors.sqrt(values).view(np.uint32))
    np.testing.assert_array_equal(got_u64, ints.astype(np.float32))  # correctly rounded, as a C cast
    with np.errstate(divide="ignore", over="ignore"):
        true_recip = (1.0 / values.astype(np.float64)).astype(np.float32)
    true_sqrt = np.sqrt(values.astype(np.float64)).astype(np.float32)
    finite = np.isfinite(true_recip) & (np.abs(true_recip) >= np.finfo(np.float32).tiny) & np.isfinite(values)
    assert _ulps(got_recip[finite], true_recip[finite]).max() <= 1
    ok = np.isfinite(values)
    assert _ulps(got_sqrt[ok], true_sqrt[ok]).max() <= 1
    assert np.isinf(got_recip[values == 0]).all() and (got_recip[np.isinf(values)] == 0).all()
    assert got_sqrt[values == 0].tolist() == [0.0, 0.0] and np.isinf(got_sqrt[np.isinf(values)]).all()


def _is_nearest_sqrt(n: int, got: float) -> bool:
    """Whether `got` is sqrt(n) rounded to the nearest double (n > 0; sqrt(n) is never halfway)."""
    m, e = math.frexp(got)
    half_ulp = Fraction(1, 2 ** 54) * Fraction(2) ** e
    y = Fraction(got)
    return (y - half_ulp) ** 2 <= n <= (y + half_ulp) ** 2


def test_float64_helpers_are_correctly_rounded(driver):
    rng = np.random.default_rng(17)
    ints = [int(v) for v in rng.integers(1, 2**62, size=2000, dtype=np.uint64)]
    ints += [int(v) >> int(s) or 1 for v, s in zip(rng.integers(1, 2**62, size=2000, dtype=np.uint64), rng.integers(0, 62, size=2000))]
    ints += [1, 2, 3, 4, 10**8, 10**8 + 1, 2**53 - 1, 2**53 + 1, 2**62 - 1, 65535 * 65535 * 65535]
    floats = rng.normal(size=3000) * 2.0 ** rng.integers(-400, 400, size=3000)
    f32 = rng.integers(0, 0x7F800000, size=(2, 3000), dtype=np.uint32).view(np.float32).astype(np.float64)
    floats = np.concatenate([floats, f32[0] - f32[1], [1.0, 3.0, 1e-4, 2.0**-149, 2.0**129]])
    floats = floats[floats != 0]
    text = "".join("isqrt64 %x\n" % n for n in ints)
    text += "".join("sqrt64 %x\nsquare64 %x\n" % (b, b) for b in np.abs(floats).view(np.uint64))
    out = [int(v, 16) for v in run(driver, text, "helpers")]
    got_isqrt = np.array(out[:len(ints)], dtype=np.uint64).view(np.float64)
    got = np.array(out[len(ints):], dtype=np.uint64).view(np.float64)
    assert all(_is_nearest_sqrt(n, float(g)) for n, g in zip(ints, got_isqrt))
    np.testing.assert_array_equal(got[0::2], np.sqrt(np.abs(floats)))    # IEEE sqrt and multiply round correctly
    np.testing.assert_array_equal(got[1::2], floats * floats)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("metric", METRICS)
def test_near_tie_vote_is_sklearns(driver, dtype, metric):
    lines, expected, mirror = [], [], []
    for k, X_train, y_train, X in near_tie_scenes(dtype, metric):
        knn = KNeighborsClassifier(n_neighbors=k, weights="distance", metric=metric, algorithm="kd_tree").fit(X_train, y_train)
        items = X_train.astype(np.int64) if dtype == "int16" else X_train.astype(np.float32)
        stored = StoredNeighbors("classifier", dtype, metric, "distance", k, items, y_train, 3)
        lines += model_lines(stored, X)
        expected.append(int(knn.predict(X)[0]))
        mirror.append(int(stored.predict_index(X)[0]))
    out = [line for line in run(driver, "\n".join(lines) + "\n") if "|" in line]
    assert [int(line.split("|")[0]) for line in out] == expected == mirror
    assert 1 in expected


def test_error_codes(driver):
    lines = [
        "shape 3 1 1 2 5 2", "shape 1 4 1 2 5 2", "shape 1 1 3 2 5 2", "shape 1 1 1 0 5 2",
        "shape 1 1 1 65536 5 2", "shape 1 1 1 2 0 2", "shape 1 1 1 2 5 0", "shape 2 1 1 65535 16777216 1",
        "shape 1 1 1 2 2 2",
        "query 0 0",             # no items: k=2 > 0
        "add 0 1 1", "query 0 0",  # one item
        "add 65535 1 1",         # label above 65534
        "add 65534 2 2", "add 1 3 3",  # third item: over capacity
        "set 3 0 1 1",           # past the end
        "remove 2", "remove 1", "k 0", "k 3", "k 1", "query 0 0",
        "end",
    ]
    out = run(driver, "\n".join(lines) + "\n")
    assert out == [
        "error %d" % CODE["BAD_DTYPE"], "error %d" % CODE["NB_BAD_METRIC"], "error %d" % CODE["NB_BAD_WEIGHTS"],
        "error %d" % CODE["BAD_N_FEATURES"], "error %d" % CODE["BAD_N_FEATURES"], "error %d" % CODE["NB_BAD_MAX_ITEMS"],
        "error %d" % CODE["NB_BAD_K"], "error %d" % CODE["TOO_BIG"],
        "bytes %d" % (16 + 8 + 8 + 8),
        "error %d" % CODE["NB_TOO_FEW_ITEMS"],
        "ok", "error %d" % CODE["NB_TOO_FEW_ITEMS"],
        "error %d" % CODE["NB_LABEL_RANGE"],
        "ok", "error %d" % CODE["NB_FULL"],
        "error %d" % CODE["NB_ITEM_INDEX"],
        "error %d" % CODE["NB_ITEM_INDEX"], "ok", "error %d" % CODE["NB_BAD_K"], "error %d" % CODE["NB_BAD_K"], "ok",
        "0 | 2 | 0 | 3fb504f3 | 3fb504f3",
        "end",
    ]


def test_random_operation_sequences_never_crash(driver):
    rng = np.random.default_rng(3)
    lines = []
    for _ in range(40):
        dtype = ["int16", "float32"][int(rng.integers(2))]
        n_features = int(rng.integers(1, 20))
        max_items = int(rng.integers(1, 12))
        lines.append("shape %d %d %d %d %d %d" % (DTYPES[dtype], rng.integers(1, 4), rng.integers(1, 3), n_features,
                                                  max_items, rng.integers(1, max_items + 1)))
        for _ in range(60):
            op = int(rng.integers(5))
            if dtype == "int16":
                row = " ".join(str(v) for v in rng.integers(-32768, 32768, size=n_features))
            else:
                row = " ".join("%08x" % v for v in rng.integers(0, 2**32, size=n_features, dtype=np.uint64))
            if op == 0:
                lines.append("add %d %s" % (rng.integers(0, 70000), row))
            elif op == 1:
                lines.append("set %d %d %s" % (rng.integers(0, 14), rng.integers(0, 5), row))
            elif op == 2:
                lines.append("remove %d" % rng.integers(0, 14))
            elif op == 3:
                lines.append("k %d" % rng.integers(0, 14))
            else:
                lines.append("query " + row)
        lines.append("end")
    out = run(driver, "\n".join(lines) + "\n")
    assert out.count("end") == 40
    assert not any(line in ("badrow", "badcmd", "noshape") for line in out)
