"""Every module on emulated microcontrollers: MicroPython 1.27 firmware under qemu (mpyml.boards).

Each workload runs once on the unix port (x64) and once per board. Its outputs are raw
float32/int bytes (hex), so "identical" means bit for bit, whatever the port's Python float
width (the unix port and MPS2_AN500 box doubles, the other boards float32). Each output is also
checked against scikit-learn/scipy/numpy/Keras. Each script reports the heap the module's import
took (native code lives in the heap on a board) and the heap its predict/run calls allocate (zero).
Select with `-m boards`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from scipy import signal
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import board_report
import mpyml
from mpyml import boards, build, iir
from mpyml.demo import int16_scaled

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


WORKLOADS = [trees_int16, trees_float32_pipeline, iir_float32_q15, fft, knn, linear, cnn_float32, cnn_int8]


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
