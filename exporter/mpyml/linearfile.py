"""Writes and reads the mpyml-linear model file (specified in docs/formats.md).

The device-side reader is natmods/emllinear/emllinear_load.py; emllinear_predict
runs a file on the unix port.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from .linear import StoredChain, StoredStep

FORMAT = "mpyml-linear"
FORMAT_VERSION = 1


class FormatError(ValueError):
    pass


def _hex_row(values) -> str:
    bits = np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32)
    return ",".join("%08x" % int(b) for b in bits)


def write(stored: StoredChain, f) -> None:
    header = [
        (FORMAT, FORMAT_VERSION),
        ("kind", stored.kind),
        ("proba", stored.proba),
        ("n_features", stored.n_features),
        ("n_outputs", stored.n_outputs),
        ("n_steps", len(stored.steps)),
        ("n_values", stored.n_values),
        ("max_width", stored.max_width),
    ]
    lines = ["%s,%s" % kv for kv in header] + step_lines(stored.steps)
    f.write("\n".join(lines) + "\n")


def step_lines(steps) -> list[str]:
    """The step records (also the steps section of mpyml-trees version 2)."""
    lines = []
    for step in steps:
        lines.append("step,%s,%d,%d" % (step.kind, step.n_in, step.n_out))
        if step.kind == "select":
            lines.append(",".join(str(int(i)) for i in step.indices))
        elif step.kind == "affine":
            lines += [_hex_row(step.a), _hex_row(step.b)]
        else:
            lines += [_hex_row(row) for row in step.a]
            lines.append(_hex_row(step.b))
    return lines


def read_steps(take, n_steps: int) -> list[StoredStep]:
    """n_steps step records; take() returns the next (line number, line)."""

    def floats(n):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != n:
            raise FormatError("line %d: expected %d values, got %d" % (lineno, n, len(fields)))
        return np.array([int(v, 16) for v in fields], dtype=np.uint32).view(np.float32)

    steps = []
    for _ in range(n_steps):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != 4 or fields[0] != "step":
            raise FormatError("line %d: expected 'step,<kind>,<n_in>,<n_out>', got %r" % (lineno, line))
        step_kind, n_in, n_out = fields[1], int(fields[2]), int(fields[3])
        if step_kind == "select":
            steps.append(StoredStep("select", n_in, n_out, indices=np.array(take()[1].split(","), dtype=np.int64)))
        elif step_kind == "affine":
            steps.append(StoredStep("affine", n_in, n_out, a=floats(n_out), b=floats(n_out)))
        else:
            weights = np.stack([floats(n_in) for _ in range(n_out)])
            steps.append(StoredStep("matrix", n_in, n_out, a=weights, b=floats(n_out)))
    return steps


def dumps(stored: StoredChain) -> str:
    out = io.StringIO()
    write(stored, out)
    return out.getvalue()


def save(stored: StoredChain, path) -> int:
    """Writes the model file; returns its size in bytes."""
    with open(path, "w", newline="\n") as f:
        write(stored, f)
    return os.path.getsize(path)


def read(f) -> StoredChain:
    """Reads a file written by :func:`write` (tests, `mpyml inspect`)."""
    records = iter([(i + 1, line.strip()) for i, line in enumerate(f) if line.strip() and not line.startswith("#")])

    def take():
        try:
            return next(records)
        except StopIteration:
            raise FormatError("file ends early") from None

    def value(key):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != 2 or fields[0] != key:
            raise FormatError("line %d: expected '%s,<value>', got %r" % (lineno, key, line))
        return fields[1]

    version = value(FORMAT)
    if version != str(FORMAT_VERSION):
        raise FormatError("format version %s is not supported (expected %d)" % (version, FORMAT_VERSION))
    kind, proba = value("kind"), value("proba")
    n_features, n_outputs, n_steps = int(value("n_features")), int(value("n_outputs")), int(value("n_steps"))
    value("n_values")
    value("max_width")
    steps = read_steps(take, n_steps)
    return StoredChain(kind=kind, n_features=n_features, n_outputs=n_outputs, proba=proba, steps=steps)


def load(path) -> StoredChain:
    with open(path) as f:
        return read(f)


_RUN_SCRIPT = """
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


def run_on_device(model_path, X, stored: StoredChain):
    """Loads `model_path` into emllinear on the unix port and runs every row of X.

    Returns (transform or decision values, class indices or None, probabilities or None).
    """
    from . import device

    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    width = stored.steps[-1].n_out
    with_proba = stored.kind == "classifier" and stored.proba != "none"
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "x.bin", Path(tmp) / "out.bin"
        x_path.write_bytes(X.astype("<f4").tobytes())
        device.run(_RUN_SCRIPT.format(n_steps=len(stored.steps), n_values=stored.n_values,
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
