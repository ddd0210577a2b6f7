"""Writes and reads the mpyml-linear model file (specified in docs/formats.md).

The device-side reader is natmods/emllinear/emllinear.c (linear_read); mpyml.device.predict_linear
runs a file on the unix port.
"""

from __future__ import annotations

import numpy as np

from ..linear import (CLASSIFIER, MAX_STEPS, MAX_WIDTH, PROBA_LOGISTIC, PROBA_NONE, PROBA_OVR, PROBA_SOFTMAX, REGRESSOR,
                     TRANSFORMER, StoredChain, StoredStep)
from .records import Records, label_array, label_records, seal

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


def read_steps(found: Records, n_steps: int) -> list[StoredStep]:
    """n_steps step records from `found`. Checks what the device checks: kinds, widths chaining,
    value counts, select indices below n_in, finite floats."""
    steps = []
    for _ in range(n_steps):
        fields = found.take("a step record").split(",")
        if len(fields) != 4 or fields[0] != "step" or fields[1] not in ("affine", "select", "matrix"):
            raise found.error("expected 'step,<affine|select|matrix>,<n_in>,<n_out>', got %r" % ",".join(fields)[:40])
        n_in, n_out = found.int(fields[2], 1, MAX_WIDTH, "n_in"), found.int(fields[3], 1, MAX_WIDTH, "n_out")
        if steps and n_in != steps[-1].n_out:
            raise found.error("n_in=%d, the previous step gives %d" % (n_in, steps[-1].n_out))
        step_kind = fields[1]
        if step_kind == "select":
            fields = found.take("a row of select indices").split(",")
            if len(fields) != n_out:
                raise found.error("expected %d values, got %d" % (n_out, len(fields)))
            indices = np.array([found.int(v, 0, n_in - 1, "a select index") for v in fields], dtype=np.int64)
            steps.append(StoredStep("select", n_in, n_out, indices=indices))
        elif step_kind == "affine":
            if n_in != n_out:
                raise found.error("an affine step needs n_in == n_out")
            steps.append(StoredStep("affine", n_in, n_out, a=found.float32_row(n_out), b=found.float32_row(n_out)))
        else:
            weights = np.stack([found.float32_row(n_in) for _ in range(n_out)])
            steps.append(StoredStep("matrix", n_in, n_out, a=weights, b=found.float32_row(n_out)))
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
    found = Records(data)
    line = found.take("the format line")
    version = line[len(FORMAT) + 1:] if line.startswith(FORMAT + ",") else None
    if version == "1":
        raise found.error("version 1 is no longer read by this mpyml (it reads version %d): export the model again"
                          % FORMAT_VERSION)
    if version != str(FORMAT_VERSION):
        raise found.error("expected '%s,%d', got %r" % (FORMAT, FORMAT_VERSION, line[:40]))
    kind = found.value("kind", (CLASSIFIER, REGRESSOR, TRANSFORMER))
    proba = found.value("proba", (PROBA_NONE, PROBA_LOGISTIC, PROBA_SOFTMAX, PROBA_OVR))
    n_features, n_outputs = found.count("n_features", 1, MAX_WIDTH), found.count("n_outputs", 1, MAX_WIDTH)
    n_steps, n_values = found.count("n_steps", 1, MAX_STEPS), found.count("n_values", 0, MAX_VALUES)
    max_width = found.count("max_width", 1, MAX_WIDTH)
    classes = found.labels("classes") if kind == CLASSIFIER else None
    if kind == CLASSIFIER and len(classes or ()) != n_outputs:
        raise found.error("%d classes, but n_outputs is %d" % (len(classes or ()), n_outputs))
    feature_names = found.labels("feature_names")
    if feature_names is not None and len(feature_names) != n_features:
        raise found.error("%d feature names, but n_features is %d" % (len(feature_names), n_features))
    steps = read_steps(found, n_steps)
    found.end("step")
    stored = StoredChain(kind=kind, n_features=n_features, n_outputs=n_outputs, proba=proba, steps=steps,
                         classes=None if classes is None else label_array(classes), feature_names=feature_names)
    if steps[0].n_in != n_features or (stored.n_values, stored.max_width) != (n_values, max_width):
        raise found.error("the steps do not match the header's n_features, n_values or max_width")
    if not _output_fits(kind, proba, n_outputs, steps[-1].n_out):
        raise found.error("the last step's width does not fit the model kind, n_outputs and proba")
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
