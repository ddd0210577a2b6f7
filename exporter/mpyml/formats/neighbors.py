"""Writer and reader of the mpyml-neighbors model file format (docs/formats.md)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError
from ..neighbors import CLASSIFIER, FEATURE_DTYPES, METRICS, NEIGHBORS, WEIGHTS, StoredNeighbors
from .records import CORRUPT, label_array, label_records, parse_hex32, parse_int, read_labels, records, seal

FORMAT = "mpyml-neighbors"
# Version 3: the end record, class labels and feature names; the steps section is optional.
# Versions 1 and 2 are refused.
FORMAT_VERSION = 3

__all__ = ["FORMAT", "FORMAT_VERSION", "FormatError", "dumps", "save", "read", "load"]


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
        from .linear import step_lines

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
    found = iter(records(data.encode() if isinstance(data, str) else bytes(data)))
    last = [0]

    def take(what="a record"):
        for n, line in found:
            last[0] = n
            return n, line
        raise FormatError("line %d: %sit ends here, expected %s" % (last[0], CORRUPT, what))

    def number(n, text, low, high, what):
        try:
            return parse_int(text, low, high, what)
        except ValueError as e:
            raise FormatError("line %d: %s" % (n, e)) from None

    def value(key, choices=None, low=None, high=None):
        n, line = take(key)
        fields = line.split(",")
        if len(fields) != 2 or fields[0] != key:
            raise FormatError("line %d: expected '%s,<value>', got %r" % (n, key, line[:40]))
        if choices is not None and fields[1] not in choices:
            raise FormatError("line %d: %s must be one of %s, got %r" % (n, key, choices, fields[1][:20]))
        return fields[1] if low is None else number(n, fields[1], low, high, key)

    n, version = take("the format line")
    if not version.startswith(FORMAT + ","):
        raise FormatError("line %d: expected '%s,%d', got %r" % (n, FORMAT, FORMAT_VERSION, version[:40]))
    version = version[len(FORMAT) + 1:]
    if version in ("1", "2"):
        raise FormatError("line %d: version %s is no longer read by this mpyml (it reads version %d): export the "
                          "model again" % (n, version, FORMAT_VERSION))
    if version != str(FORMAT_VERSION):
        raise FormatError("line %d: format version %r is not supported (expected %d)" % (n, version[:10], FORMAT_VERSION))
    kind = value("kind", (CLASSIFIER, NEIGHBORS))
    dtype = value("dtype", FEATURE_DTYPES)
    metric = value("metric", METRICS)
    weights = value("weights", WEIGHTS)
    n_features = value("n_features", low=1, high=65535)
    n_classes = value("n_classes", low=0, high=65535)
    k = value("k", low=1, high=65535)
    n_items = value("n_items", low=1, high=2**24)
    labeled = kind == CLASSIFIER
    if labeled != (n_classes > 0) or n_items < k:
        raise FormatError("line %d: n_classes must be >= 1 for a classifier and 0 for neighbors, and n_items >= k" % last[0])
    n, threshold_text = take("threshold")
    if not threshold_text.startswith("threshold,"):
        raise FormatError("line %d: expected 'threshold,<bits or none>', got %r" % (n, threshold_text[:40]))
    threshold_text = threshold_text[len("threshold,"):]
    threshold = None
    if threshold_text != "none":
        try:
            threshold = np.array([parse_hex32(threshold_text)], dtype=np.uint32).view(np.float32)[0]
        except ValueError as e:
            raise FormatError("line %d: %s" % (n, e)) from None
    classes = None
    if labeled:
        classes = read_labels(take, "classes")
        if classes is None or len(classes) != n_classes:
            raise FormatError("line %d: %d classes, but n_classes is %d" % (last[0], len(classes or ()), n_classes))
    feature_names = read_labels(take, "feature_names")
    n, line = take("the 'items' section line")
    steps = None
    if line.startswith("steps,"):
        from ..linear import TRANSFORMER, StoredChain
        from .linear import read_steps

        fields = line.split(",")
        if len(fields) != 5:
            raise FormatError("line %d: expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>', got %r"
                              % (n, line[:40]))
        n_input = number(n, fields[1], 1, 65535, "n_input_features")
        n_steps = number(n, fields[2], 1, 255, "n_steps")
        steps = StoredChain(kind=TRANSFORMER, n_features=n_input, n_outputs=n_features, proba="none",
                            steps=read_steps(take, n_steps), feature_names=feature_names)
        if (steps.n_values, steps.max_width) != (number(n, fields[3], 0, 2**30 - 1, "n_values"),
                                                 number(n, fields[4], 1, 65535, "max_width")):
            raise FormatError("line %d: the steps hold %d values and are %d wide, the steps line says %s and %s"
                              % (n, steps.n_values, steps.max_width, fields[3][:12], fields[4][:12]))
        if steps.steps[-1].n_out != n_features:
            raise FormatError("line %d: the steps give %d features, the items have %d" % (n, steps.steps[-1].n_out, n_features))
        feature_names = None
        n, line = take("the 'items' section line")
    if line != "items":
        raise FormatError("line %d: expected 'items', got %r" % (n, line[:40]))
    if feature_names is not None and len(feature_names) != n_features:
        raise FormatError("line %d: %d feature names, but n_features is %d" % (n, len(feature_names), n_features))
    rows, labels = [], []
    for _ in range(n_items):
        n, line = take("an item")
        fields = line.split(",")
        if len(fields) != n_features + labeled:
            raise FormatError("line %d: an item needs %d fields, got %d" % (n, n_features + labeled, len(fields)))
        if labeled:
            labels.append(number(n, fields.pop(0), 0, n_classes - 1, "label"))
        try:
            rows.append([parse_hex32(v) if dtype == "float32" else parse_int(v, -32768, 32767, "an int16 feature")
                         for v in fields])
        except ValueError as e:
            raise FormatError("line %d: %s" % (n, e)) from None
    for n, line in found:
        raise FormatError("line %d: unexpected line after the last item: %r" % (n, line[:40]))
    if dtype == "float32":
        items = np.array(rows, dtype=np.uint32).reshape(n_items, n_features).view(np.float32)
    else:
        items = np.array(rows, dtype=np.int64).reshape(n_items, n_features)
    stored = StoredNeighbors(kind, dtype, metric, weights, k, items, np.array(labels, dtype=np.int64) if labeled else None,
                             n_classes, threshold, classes=None if classes is None else label_array(classes),
                             feature_names=feature_names)
    if steps is None:
        return stored
    from ..linear import StoredPipeline

    return StoredPipeline(steps=steps, model=stored)


def load(path: str | os.PathLike):
    with open(path, "rb") as f:
        return read(f.read())
