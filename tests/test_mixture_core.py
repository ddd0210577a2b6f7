"""The portable core of emlmixture (natmods/common/mpyml_mixture.h) and mpyml_logf
(mpyml_math.h), built for the host under ASan and UBSan (tests/c/mixture_driver.c): bit for bit
the numpy mirror (mpyml.mixture), logf against numpy over the whole float32 range, every corrupt
row refused with its error code, and random garbage never crashing it."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.covariance import EllipticEnvelope
from sklearn.mixture import GaussianMixture
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from c_errors import error_codes
from mpyml import mixture
from mpyml.formats import mixture as mixture_format

ROOT = Path(__file__).resolve().parents[1]
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
          "-ffp-contract=off", "-g", "-I", str(ROOT / "natmods" / "common")]
ERR = error_codes()
KIND_CODES = {k: i + 1 for i, k in enumerate(mixture.KINDS)}
COV_CODES = {c: i + 1 for i, c in enumerate(mixture.COVARIANCE_TYPES)}


@pytest.fixture(scope="module", params=["O0", "O2"])
def driver(request, tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("mixture_" + request.param) / "mixture_driver"
    extra = ["-O2"] if request.param == "O2" else []
    proc = subprocess.run(["gcc", *CFLAGS, *extra, "-o", str(exe), str(ROOT / "tests" / "c" / "mixture_driver.c")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def run(exe: Path, text: str) -> list[str]:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([str(exe)], input=text.encode(), capture_output=True, timeout=300, env=env)
    stderr = proc.stderr.decode(errors="replace")
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr[-3000:]
    assert proc.returncode == 0, stderr[-2000:]
    return proc.stdout.decode().splitlines()


def hex32(values) -> list[str]:
    return ["%08x" % b for b in np.asarray(values, dtype=np.float32).ravel().view(np.uint32)]


def test_logf_whole_float32_range(driver):
    """Every 4099th positive float32 bit pattern (subnormals, normals, the largest), plus 0, inf,
    NaN and negatives: bit for bit the mirror, and within 1 ulp of the correctly rounded log."""
    bits = np.concatenate([np.arange(1, 0x7F800000, 4099, dtype=np.uint32),
                           np.array([0x00000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0x3F7FFFFF, 0x3F800001, 0x7F7FFFFF],
                                    dtype=np.uint32)])
    x = bits.view(np.float32)
    got = []
    for chunk in np.array_split(x, 64):
        got += run(driver, "log " + " ".join(hex32(chunk)) + "\n")[0].split()
    got = np.array([int(h, 16) for h in got], dtype=np.uint32).view(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), mixture.logf(x).view(np.uint32))
    exact = np.log(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    err_ulps = np.abs(got.astype(np.float64) - exact) / ulp
    assert err_ulps.max() <= 1.0, err_ulps.max()
    special = np.array([0.0, np.inf, np.nan, -1.0, -np.inf, -0.0], dtype=np.float32)
    out = run(driver, "log " + " ".join(hex32(special)) + "\n")[0].split()
    assert out == ["ff800000", "7f800000", "7fc00000", "7fc00000", "7fc00000", "ff800000"]


def _script(stored: mixture.StoredMixture, threshold="none") -> str:
    lines = ["begin %d %d %d %d %s" % (KIND_CODES[stored.kind], COV_CODES[stored.covariance_type], stored.n_features,
                                        stored.n_components, threshold)]
    text = mixture_format.dumps(stored).splitlines()
    start = text.index("values") + 1
    lines += ["row " + row for row in text[start:start + len(stored.rows)]]
    return "\n".join(lines + ["finish"]) + "\n"


def _fitted(kind: str, cov: str, seed: int):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((200, 5)) @ rng.standard_normal((5, 5))).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = {"mixture": lambda: GaussianMixture(3, covariance_type=cov, random_state=seed).fit(X),
               "naive_bayes": lambda: GaussianNB().fit(X, y),
               "envelope": lambda: EllipticEnvelope(random_state=seed).fit(X),
               "kmeans": lambda: KMeans(4, random_state=seed, n_init=1).fit(X) if cov == "spherical"
               else make_pipeline(StandardScaler(), KMeans(4, random_state=seed, n_init=1)).fit(X)}[kind]()
    return mixture.mixture_from_sklearn(est), X


@pytest.mark.parametrize("kind,cov", [("mixture", c) for c in mixture.COVARIANCE_TYPES]
                         + [("naive_bayes", "diag"), ("envelope", "full"), ("kmeans", "spherical"), ("kmeans", "diag")])
def test_core_matches_mirror(driver, kind, cov):
    for seed in range(3):
        stored, X = _fitted(kind, cov, seed)
        X = np.concatenate([X, (X * 7).astype(np.float32)])  # far rows too
        out = run(driver, _script(stored) + "".join("x " + " ".join(hex32(x)) + "\n" for x in X))
        assert out[:len(stored.rows) + 2] == ["ok"] * (len(stored.rows) + 2)
        rows = [line.split() for line in out[len(stored.rows) + 2:]]
        if kind == "envelope":
            got = np.array([int(r[0], 16) for r in rows], dtype=np.uint64).view(np.float64)
            np.testing.assert_array_equal(got, stored.mahalanobis(X))
            continue
        pred = np.array([int(r[0]) for r in rows])
        np.testing.assert_array_equal(pred, stored.predict(X))
        vals = np.array([[int(h, 16) for h in r[1:]] for r in rows], dtype=np.uint32).view(np.float32)
        if kind == "mixture":
            np.testing.assert_array_equal(vals[:, 0], stored.score_samples(X))
            np.testing.assert_array_equal(vals[:, 1:], stored.predict_proba(X))
        elif kind == "naive_bayes":
            np.testing.assert_array_equal(vals, stored.predict_proba(X))
        else:
            np.testing.assert_array_equal(vals, stored._kmeans_sq_distances(X))


@pytest.mark.parametrize("cov", ["spherical", "diag"])
def test_kmeans_learn_matches_mirror(driver, cov):
    stored, X = _fitted("kmeans", cov, 1)
    assert stored.covariance_type == cov
    script = _script(stored) + "".join("learn " + " ".join(hex32(x)) + "\n" for x in X)
    script += "".join("x " + " ".join(hex32(x)) + "\n" for x in X[:20])
    out = run(driver, script)[len(stored.rows) + 2:]
    labels = stored.partial_fit(X)
    np.testing.assert_array_equal([int(v) for v in out[:len(X)]], labels)
    dist = np.array([[int(h, 16) for h in line.split()[1:]] for line in out[len(X):]], dtype=np.uint32).view(np.float32)
    np.testing.assert_array_equal(dist, stored._kmeans_sq_distances(X[:20]))


def test_corrupt_rows(driver):
    stored, _ = _fitted("mixture", "diag", 0)
    good = mixture_format.dumps(stored).splitlines()
    rows = good[good.index("values") + 1:good.index("values") + 1 + len(stored.rows)]
    head = "begin 1 3 5 3 none\n"

    def first_error(lines):
        out = run(driver, head + "".join("row %s\n" % r for r in lines) + "finish\n")
        return next((line for line in out if line != "ok"), "ok")

    assert first_error(rows) == "ok"
    assert first_error([rows[0] + ",3f800000"] + rows[1:]) == "error %d" % ERR["MIX_ROW_WIDTH"]
    assert first_error([rows[0].rsplit(",", 1)[0]] + rows[1:]) == "error %d" % ERR["MIX_ROW_WIDTH"]
    assert first_error([rows[0][:-1]] + rows[1:]) == "error %d" % ERR["BAD_HEX"]
    assert first_error(["7f800000" + rows[0][8:]] + rows[1:]) == "error %d" % ERR["MIX_NOT_FINITE"]
    assert first_error(rows + [rows[-1]]) == "error %d" % ERR["MIX_TOO_MANY_ROWS"]
    assert first_error(rows[:-1]) == "error %d" % ERR["MIX_MISSING_ROWS"]
    assert first_error([rows[0] + ","] + rows[1:]) == "error %d" % ERR["MIX_ROW_WIDTH"]
    assert run(driver, "begin 2 1 5 3 none\n") == ["error %d" % ERR["MIX_HEADER"]]  # naive_bayes is diag
    assert run(driver, "begin 3 1 5 2 none\n") == ["error %d" % ERR["MIX_HEADER"]]  # one envelope
    assert run(driver, "begin 1 1 0 2 none\n") == ["error %d" % ERR["MIX_HEADER"]]
    assert run(driver, "begin 1 5 4 2 none\n") == ["error %d" % ERR["MIX_HEADER"]]
    assert run(driver, "begin 1 1 65535 65535 none\n") == ["error %d" % ERR["TOO_BIG"]]
    # float64 rows need 16 hex digits; k-means counts 0..2**24
    nb, _ = _fitted("naive_bayes", "diag", 0)
    assert run(driver, "begin 2 3 5 %d none\nrow 3f800000\n" % nb.n_components)[1] == "error %d" % ERR["MIX_HEX64"]
    assert run(driver, "begin 4 4 1 2 none\nrow 3f800000\nrow 3f800000\nrow 3f800000,bf800000\n")[-1] == "error %d" % ERR["MIX_COUNT"]


def test_garbage_rows_never_crash(driver):
    rng = np.random.default_rng(5)
    alphabet = np.array(list("0123456789abcdefABCDEF,,,xn-"))
    script = []
    for _ in range(300):
        kind, cov = [(1, 1), (1, 2), (1, 3), (1, 4), (2, 3), (3, 1), (4, 4)][rng.integers(7)]
        d, k = int(rng.integers(1, 6)), 1 if kind == 3 else int(rng.integers(1, 5))
        script.append("begin %d %d %d %d none" % (kind, cov, d, k))
        for _ in range(int(rng.integers(0, 12))):
            script.append("row " + ("".join(rng.choice(alphabet, int(rng.integers(1, 60)))) or "0"))
        script.append("finish")
    out = run(driver, "\n".join(script) + "\n")
    assert all(line == "ok" or line.startswith("error ") for line in out)
