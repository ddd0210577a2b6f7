"""Writes and reads the mpyml-linear model file (specified in docs/formats.md).

The device-side reader is natmods/emllinear/emllinear_load.py; emllinear_predict
runs a file on the unix port.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..linear import (CLASSIFIER, MAX_STEPS, MAX_WIDTH, PROBA_LOGISTIC, PROBA_NONE, PROBA_OVR, PROBA_SOFTMAX, REGRESSOR,
                     TRANSFORMER, StoredChain, StoredStep)
from .records import CORRUPT, label_array, label_records, parse_hex32, parse_int, read_labels, records, seal

FORMAT = "mpyml-linear"
# Version 2: the end record, class labels and feature names. Version 1 is refused.
FORMAT_VERSION = 2
MAX_VALUES = 2**30 - 1


def _hex_row(values) -> str:
    bits = np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32)
    return ",".join("%08x" % int(b) for b in bits)


def dumps(stored: StoredChain) -> str:
    """The file's text (docs/formats.md, mpyml-linear)."""
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
    lines = ["%s,%s" % kv for kv in header]
    if stored.kind == CLASSIFIER:
        lines += label_records("classes", stored.classes if stored.classes is not None else np.arange(stored.n_outputs))
    lines += label_records("feature_names", stored.feature_names)
    return seal("\n".join(lines + step_lines(stored.steps)) + "\n")


def write(stored: StoredChain, f) -> None:
    f.write(dumps(stored))


def step_lines(steps) -> list[str]:
    """The step records (also the steps section of mpyml-trees and mpyml-neighbors)."""
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
    """n_steps step records; take() returns the next (line number, line). Checks what the device
    checks: kinds, widths chaining, value counts, select indices below n_in, finite floats."""

    def row(n):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != n:
            raise FormatError("line %d: expected %d values, got %d" % (lineno, n, len(fields)))
        return lineno, fields

    def floats(n):
        lineno, fields = row(n)
        try:
            values = np.array([parse_hex32(v) for v in fields], dtype=np.uint32).view(np.float32)
        except ValueError as e:
            raise FormatError("line %d: %s" % (lineno, e)) from None
        if not np.all(np.isfinite(values)):
            raise FormatError("line %d: NaN or infinite value" % lineno)
        return values

    steps = []
    for _ in range(n_steps):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != 4 or fields[0] != "step" or fields[1] not in ("affine", "select", "matrix"):
            raise FormatError("line %d: expected 'step,<affine|select|matrix>,<n_in>,<n_out>', got %r" % (lineno, line[:40]))
        try:
            n_in, n_out = (parse_int(v, 1, MAX_WIDTH, what) for v, what in zip(fields[2:], ("n_in", "n_out")))
        except ValueError as e:
            raise FormatError("line %d: %s" % (lineno, e)) from None
        if steps and n_in != steps[-1].n_out:
            raise FormatError("line %d: n_in=%d, the previous step gives %d" % (lineno, n_in, steps[-1].n_out))
        step_kind = fields[1]
        if step_kind == "select":
            lineno, fields = row(n_out)
            try:
                indices = np.array([parse_int(v, 0, n_in - 1, "a select index") for v in fields], dtype=np.int64)
            except ValueError as e:
                raise FormatError("line %d: %s" % (lineno, e)) from None
            steps.append(StoredStep("select", n_in, n_out, indices=indices))
        elif step_kind == "affine":
            if n_in != n_out:
                raise FormatError("line %d: an affine step needs n_in == n_out" % lineno)
            steps.append(StoredStep("affine", n_in, n_out, a=floats(n_out), b=floats(n_out)))
        else:
            weights = np.stack([floats(n_in) for _ in range(n_out)])
            steps.append(StoredStep("matrix", n_in, n_out, a=weights, b=floats(n_out)))
    return steps


def save(stored: StoredChain, path) -> int:
    """Writes the model file; returns its size in bytes."""
    text = dumps(stored)
    with open(path, "w", newline="\n") as f:
        f.write(text)
    return len(text.encode())


def read(data) -> StoredChain:
    """Reads a file's bytes (or text) as the device does (tests, `mpyml inspect`).
    Raises FormatError("line N: ...")."""
    found = iter(records(data.encode() if isinstance(data, str) else bytes(data)))
    last = [0]

    def take():
        for n, line in found:
            last[0] = n
            return n, line
        raise FormatError("line %d: %sit ends early" % (last[0], CORRUPT))

    def value(key, low=None, high=None):
        lineno, line = take()
        fields = line.split(",")
        if len(fields) != 2 or fields[0] != key:
            raise FormatError("line %d: expected '%s,<value>', got %r" % (lineno, key, line[:40]))
        if low is None:
            return fields[1]
        try:
            return parse_int(fields[1], low, high, key)
        except ValueError as e:
            raise FormatError("line %d: %s" % (lineno, e)) from None

    lineno, line = take()
    version = line[len(FORMAT) + 1:] if line.startswith(FORMAT + ",") else None
    if version == "1":
        raise FormatError("line %d: version 1 is no longer read by this mpyml (it reads version %d): export the model "
                          "again" % (lineno, FORMAT_VERSION))
    if version != str(FORMAT_VERSION):
        raise FormatError("line %d: expected '%s,%d', got %r" % (lineno, FORMAT, FORMAT_VERSION, line[:40]))
    kind, proba = value("kind"), value("proba")
    if kind not in (CLASSIFIER, REGRESSOR, TRANSFORMER) or proba not in (PROBA_NONE, PROBA_LOGISTIC, PROBA_SOFTMAX, PROBA_OVR):
        raise FormatError("line %d: unknown kind %r or proba %r" % (lineno, kind[:20], proba[:20]))
    n_features, n_outputs = value("n_features", 1, MAX_WIDTH), value("n_outputs", 1, MAX_WIDTH)
    n_steps, n_values = value("n_steps", 1, MAX_STEPS), value("n_values", 0, MAX_VALUES)
    max_width = value("max_width", 1, MAX_WIDTH)
    classes = read_labels(take, "classes") if kind == CLASSIFIER else None
    if kind == CLASSIFIER and len(classes or ()) != n_outputs:
        raise FormatError("line %d: %d classes, but n_outputs is %d" % (last[0], len(classes or ()), n_outputs))
    feature_names = read_labels(take, "feature_names")
    if feature_names is not None and len(feature_names) != n_features:
        raise FormatError("line %d: %d feature names, but n_features is %d" % (last[0], len(feature_names), n_features))
    steps = read_steps(take, n_steps)
    for lineno, line in found:
        raise FormatError("line %d: unexpected line after the last step: %r" % (lineno, line[:40]))
    stored = StoredChain(kind=kind, n_features=n_features, n_outputs=n_outputs, proba=proba, steps=steps,
                         classes=None if classes is None else label_array(classes), feature_names=feature_names)
    if steps[0].n_in != n_features or (stored.n_values, stored.max_width) != (n_values, max_width):
        raise FormatError("line %d: the steps do not match the header's n_features, n_values or max_width" % last[0])
    if not _output_fits(kind, proba, n_outputs, steps[-1].n_out):
        raise FormatError("line %d: the last step's width does not fit the model kind, n_outputs and proba" % last[0])
    return stored


def _output_fits(kind: str, proba: str, n_outputs: int, width: int) -> bool:
    """The device's check of the last step's width against the header (mpyml_linear_check_complete)."""
    if kind == CLASSIFIER:
        ok = n_outputs >= 2 and (width == n_outputs or (width == 1 and n_outputs == 2))
        if proba == PROBA_LOGISTIC:
            return ok and width == 1
        return ok and (proba == PROBA_NONE or width >= 2)
    if proba != PROBA_NONE:
        return False
    if kind == REGRESSOR:
        return width == 1 and n_outputs == 1
    return width == n_outputs


def load(path) -> StoredChain:
    with open(path, "rb") as f:
        return read(f.read())


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
    from .. import device

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
