"""Writer and reader of the mpyml-neighbors model file format (docs/formats.md)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError
from ..linear import TRANSFORMER, StoredChain, StoredPipeline
from ..neighbors import CLASSIFIER, FEATURE_DTYPES, METRICS, NEIGHBORS, WEIGHTS, StoredNeighbors
from .linear import read_steps, step_lines
from .records import Records, label_array, label_records, seal

FORMAT = "mpyml-neighbors"
# Version 3: the end record, class labels and feature names; the steps section is optional.
# Versions 1 and 2 are refused.
FORMAT_VERSION = 3

__all__ = ["FORMAT", "FORMAT_VERSION", "dumps", "save", "read", "load"]


def _hex_bits(values: np.ndarray) -> list[str]:
    return ["%08x" % b for b in np.asarray(values, dtype=np.float32).view(np.uint32)]


def dumps(stored: StoredNeighbors, steps=None) -> str:
    """The file's text; with `steps` (a transformer mpyml.linear.StoredChain whose output is the
    items' space) its steps section, and the feature names are the steps' (the raw inputs')."""
    if steps is not None and (stored.dtype != "float32" or steps.steps[-1].n_out != stored.n_features):
        raise ValueError("steps need float32 items whose n_features is the steps' output width")
    lines = [
        "%s,%d" % (FORMAT, FORMAT_VERSION),
        "kind,%s" % stored.kind,
        "dtype,%s" % stored.dtype,
        "metric,%s" % stored.metric,
        "weights,%s" % stored.weights,
        "n_features,%d" % stored.n_features,
        "n_classes,%d" % stored.n_classes,
        "k,%d" % stored.k,
        "n_items,%d" % stored.n_items,
        "threshold,%s" % ("none" if stored.threshold is None else _hex_bits([stored.threshold])[0]),
    ]
    if stored.kind == CLASSIFIER:
        classes = stored.classes if stored.classes is not None else np.arange(stored.n_classes)
        lines += label_records("classes", classes)
    lines += label_records("feature_names", stored.feature_names if steps is None else steps.feature_names)
    if steps is not None:
        lines.append("steps,%d,%d,%d,%d" % (steps.n_features, len(steps.steps), steps.n_values, steps.max_width))
        lines += step_lines(steps.steps)
    lines.append("items")
    for i, row in enumerate(stored.items):
        values = _hex_bits(row) if stored.dtype == "float32" else [str(int(v)) for v in row]
        if stored.labels is not None:
            values.insert(0, str(int(stored.labels[i])))
        lines.append(",".join(values))
    return seal("\n".join(lines) + "\n")


def write(stored: StoredNeighbors, f, steps=None) -> None:
    """Writes :func:`dumps` to an open text file."""
    f.write(dumps(stored, steps))


def save(stored: StoredNeighbors, path: str | os.PathLike, steps=None) -> int:
    """Writes the file (with `steps`, its steps section); returns its size in bytes."""
    text = dumps(stored, steps)
    with open(path, "w", newline="\n") as f:
        f.write(text)
    return len(text.encode())


def read(data):
    """Reads a file's bytes (or text) as the device does: a StoredNeighbors, or for a file with
    steps a mpyml.linear.StoredPipeline of its steps and items. Raises FormatError("line N: ...")."""
    found = Records(data)
    version = found.take("the format line")
    if not version.startswith(FORMAT + ","):
        raise found.error("expected '%s,%d', got %r" % (FORMAT, FORMAT_VERSION, version[:40]))
    version = version[len(FORMAT) + 1:]
    if version in ("1", "2"):
        raise found.error("version %s is no longer read by this mpyml (it reads version %d): export the model again"
                          % (version, FORMAT_VERSION))
    if version != str(FORMAT_VERSION):
        raise found.error("format version %r is not supported (expected %d)" % (version[:10], FORMAT_VERSION))
    kind = found.value("kind", (CLASSIFIER, NEIGHBORS))
    dtype = found.value("dtype", FEATURE_DTYPES)
    metric = found.value("metric", METRICS)
    weights = found.value("weights", WEIGHTS)
    n_features = found.count("n_features", 1, 65535)
    n_classes = found.count("n_classes", 0, 65535)
    k = found.count("k", 1, 65535)
    n_items = found.count("n_items", 1, 2**24)
    labeled = kind == CLASSIFIER
    if labeled != (n_classes > 0) or n_items < k:
        raise found.error("n_classes must be >= 1 for a classifier and 0 for neighbors, and n_items >= k")
    threshold_text = found.value("threshold")
    threshold = None if threshold_text == "none" else np.uint32(found.hex32(threshold_text)).view(np.float32)
    classes = None
    if labeled:
        classes = found.labels("classes")
        if classes is None or len(classes) != n_classes:
            raise found.error("%d classes, but n_classes is %d" % (len(classes or ()), n_classes))
    feature_names = found.labels("feature_names")
    line = found.take("the 'items' section line")
    steps = None
    if line.startswith("steps,"):
        fields = line.split(",")
        if len(fields) != 5:
            raise found.error("expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>', got %r" % line[:40])
        n_input = found.int(fields[1], 1, 65535, "n_input_features")
        n_steps = found.int(fields[2], 1, 255, "n_steps")
        n_values = found.int(fields[3], 0, 2**30 - 1, "n_values")
        max_width = found.int(fields[4], 1, 65535, "max_width")
        steps_line = found.line
        steps = StoredChain(kind=TRANSFORMER, n_features=n_input, n_outputs=n_features, proba="none",
                            steps=read_steps(found, n_steps), feature_names=feature_names)
        if (steps.n_values, steps.max_width) != (n_values, max_width):
            raise FormatError("line %d: the steps hold %d values and are %d wide, the steps line says %d and %d"
                              % (steps_line, steps.n_values, steps.max_width, n_values, max_width))
        if steps.steps[-1].n_out != n_features:
            raise FormatError("line %d: the steps give %d features, the items have %d"
                              % (steps_line, steps.steps[-1].n_out, n_features))
        feature_names = None
        line = found.take("the 'items' section line")
    if line != "items":
        raise found.error("expected 'items', got %r" % line[:40])
    if feature_names is not None and len(feature_names) != n_features:
        raise found.error("%d feature names, but n_features is %d" % (len(feature_names), n_features))
    rows, labels = [], []
    for _ in range(n_items):
        fields = found.fields(n_features + labeled, "an item")
        if labeled:
            labels.append(found.int(fields.pop(0), 0, n_classes - 1, "label"))
        rows.append([found.hex32(v) if dtype == "float32" else found.int(v, -32768, 32767, "an int16 feature")
                     for v in fields])
    found.end("item")
    if dtype == "float32":
        items = np.array(rows, dtype=np.uint32).reshape(n_items, n_features).view(np.float32)
    else:
        items = np.array(rows, dtype=np.int64).reshape(n_items, n_features)
    stored = StoredNeighbors(kind, dtype, metric, weights, k, items, np.array(labels, dtype=np.int64) if labeled else None,
                             n_classes, threshold, classes=None if classes is None else label_array(classes),
                             feature_names=feature_names)
    return stored if steps is None else StoredPipeline(steps=steps, model=stored)


def load(path: str | os.PathLike):
    with open(path, "rb") as f:
        return read(f.read())
