"""The portable step-chain core (natmods/common/mpyml_linear.h) built for the host under ASan and UBSan.

tests/c/linear_driver.c is fed exported pipelines in a small command format
(described at the top of the driver). Checked: bit-for-bit the numpy mirror's
transform and decision values, probabilities within 1e-6 of float64 math, every
corrupt record rejected with the right error code, random garbage never crashes.
"""

from __future__ import annotations

import os
import subprocess
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from mpyml import linear, pipeline
from test_c_core import CFLAGS, CODE, COMMON, ROOT, SANITIZER_ENV

DRIVER_SOURCE = ROOT / "tests" / "c" / "linear_driver.c"
KINDS = {"classifier": 1, "regressor": 2, "transformer": 3}
PROBA = {"none": 0, "logistic": 1, "softmax": 2, "ovr": 3}
STEPS = {"affine": 1, "select": 2, "matrix": 3}


@pytest.fixture(scope="module", params=[[], ["-O2"]], ids=["O0", "O2"])
def driver(request, tmp_path_factory):
    exe = tmp_path_factory.mktemp("linear_core") / "linear_driver"
    proc = subprocess.run(["gcc", *CFLAGS, *request.param, "-ffp-contract=off", "-o", str(exe), str(DRIVER_SOURCE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (COMMON / "mpyml_linear.h").exists()
    return exe


def run(exe, text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    proc = subprocess.run([str(exe)], input=data, capture_output=True, timeout=120, env=dict(os.environ, **SANITIZER_ENV))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"runtime error" not in proc.stderr and b"AddressSanitizer" not in proc.stderr, proc.stderr.decode()[-3000:]
    return proc.stdout.decode().splitlines()


def hexes(values) -> str:
    return " ".join("%08x" % int(b) for b in np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32))


def commands(stored: linear.StoredChain) -> list[str]:
    lines = ["shape %d %d %d %d %d %d %d" % (KINDS[stored.kind], PROBA[stored.proba], stored.n_features,
                                             stored.n_outputs, len(stored.steps), stored.n_values, stored.max_width)]
    for step in stored.steps:
        lines.append("step %d %d %d" % (STEPS[step.kind], step.n_in, step.n_out))
        if step.kind == "select":
            lines.append("i " + " ".join(str(int(i)) for i in step.indices))
        else:
            lines.append("f " + hexes(step.a))
            lines.append("f " + hexes(step.b))
    lines.append("finish")
    return lines


def bits_to_f32(tokens) -> np.ndarray:
    return np.array([int(t, 16) for t in tokens], dtype=np.uint32).view(np.float32)


def exported(pipe, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    return linear.lower(pipeline.pipeline_from_sklearn(pipe))


CASES = {
    "digits softmax": (lambda: make_pipeline(StandardScaler(), PCA(8, whiten=True), LogisticRegression(max_iter=3000)), load_digits),
    "breast_cancer logistic": (lambda: make_pipeline(MinMaxScaler(), SelectKBest(k=10), LogisticRegression(max_iter=3000)), load_breast_cancer),
    "wine regressor": (lambda: make_pipeline(StandardScaler(), TruncatedSVD(5, random_state=0), LinearRegression()), load_wine),
    "wine transformer": (lambda: make_pipeline(StandardScaler(), SelectKBest(k=6), PCA(3)), load_wine),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_mirror_bit_for_bit(driver, case):
    make, load = CASES[case]
    X, y = load(return_X_y=True)
    stored = exported(make(), X, y)
    rows = X[::7].astype(np.float32)
    out = run(driver, "\n".join(commands(stored) + ["run " + hexes(r) for r in rows]) + "\n")
    assert out[:len(commands(stored))] == ["ok"] * len(commands(stored))
    results = [line.split(" | ") for line in out[len(commands(stored)):]]
    values = np.stack([bits_to_f32(r[0].split()) for r in results])
    np.testing.assert_array_equal(values.view(np.uint32), stored.transform(rows).view(np.uint32))
    if stored.kind == "classifier":
        np.testing.assert_array_equal([int(r[1]) for r in results], stored.predict_index(rows))
        proba = np.stack([bits_to_f32(r[2].split()) for r in results])
        np.testing.assert_array_equal(proba.view(np.uint32), stored.predict_proba(rows).view(np.uint32))


def small_model():
    X, y = load_wine(return_X_y=True)
    return exported(make_pipeline(StandardScaler(), SelectKBest(k=4), PCA(2), LogisticRegression(max_iter=3000)), X, y)


def error(name):
    return "error %d" % CODE[name]


def test_rejects_corrupt_records(driver):
    good = commands(small_model())
    assert good[0] == "shape 1 2 13 3 4 49 13" and good[1] == "step 1 13 13" and good[4] == "step 2 13 4"

    def replaced(index, line):
        cmds = list(good)
        cmds[index] = line
        return run(driver, "\n".join(cmds) + "\n")

    assert replaced(0, "shape 4 0 13 3 4 49 13")[0] == error("LIN_HEADER")
    assert replaced(0, "shape 2 2 13 1 4 49 13")[0] == error("LIN_HEADER")  # a regressor with probabilities
    assert replaced(0, "shape 1 2 13 3 4 49 12")[0] == error("LIN_HEADER")  # n_features above max_width
    assert replaced(0, "shape 1 2 13 3 0 48 13")[0] == error("LIN_HEADER")
    assert replaced(1, "step 4 13 13")[1] == error("LIN_STEP_KIND")
    assert replaced(1, "step 1 12 12")[1] == error("LIN_STEP_CHAIN")
    assert replaced(1, "step 1 13 14")[1] == error("LIN_STEP_WIDTH")
    assert replaced(5, "i 0 1 2 13")[5] == error("LIN_INDEX")
    assert replaced(2, "f 7f800000" + good[2][10:])[2] == error("LIN_NOT_FINITE")
    assert replaced(3, good[3] + " 00000000")[3] == error("LIN_TOO_MANY_VALUES")
    assert replaced(3, "f 00000000")[4] == error("LIN_MISSING")  # the next step while values are pending
    assert replaced(6, "step 3 4 60000")[6] == error("LIN_STEP_WIDTH")
    assert replaced(6, "step 3 4 13")[6] == error("LIN_TOO_MANY_VALUES")
    out = run(driver, "\n".join(good[:-3] + ["finish"]) + "\n")
    assert out[-1] == error("LIN_MISSING")
    out = run(driver, "\n".join(good[:-1] + ["step 3 3 3", "finish"]) + "\n")
    assert out[-2] == error("LIN_TOO_MANY_STEPS")
    out = run(driver, "\n".join(["shape 1 1 13 3 4 49 13"] + good[1:]) + "\n")  # logistic needs one decision value
    assert out[-1] == error("LIN_OUTPUT")


def test_random_garbage_never_crashes(driver):
    rng = np.random.default_rng(0)
    good = commands(small_model())
    words = [w for line in good for w in line.split()] + ["0", "1", "4294967295", "65535", "ffffffff", "-1"]
    for trial in range(30):
        cmds = []
        for line in good:
            tokens = line.split()
            if rng.random() < 0.3:
                tokens[rng.integers(len(tokens))] = str(rng.choice(words))
            if rng.random() < 0.1:
                continue
            cmds.append(" ".join(tokens))
        cmds += ["run " + hexes(rng.normal(size=13))] * 2
        run(driver, "\n".join(cmds) + "\n")
