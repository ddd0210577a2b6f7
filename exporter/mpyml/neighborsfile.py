"""Writer and reader of the mpyml-neighbors model file format (docs/formats.md)."""

from __future__ import annotations

import io
import os

import numpy as np

from .neighbors import CLASSIFIER, FEATURE_DTYPES, METRICS, NEIGHBORS, WEIGHTS, StoredNeighbors

FORMAT = "mpyml-neighbors"
FORMAT_VERSION = 1


class FormatError(ValueError):
    """The file is not a valid mpyml-neighbors file."""


def _hex_bits(values: np.ndarray) -> list[str]:
    return ["%08x" % b for b in np.asarray(values, dtype=np.float32).view(np.uint32)]


def write(stored: StoredNeighbors, f) -> None:
    f.write("%s,%d\n" % (FORMAT, FORMAT_VERSION))
    f.write("kind,%s\n" % stored.kind)
    f.write("dtype,%s\n" % stored.dtype)
    f.write("metric,%s\n" % stored.metric)
    f.write("weights,%s\n" % stored.weights)
    f.write("n_features,%d\n" % stored.n_features)
    f.write("n_classes,%d\n" % stored.n_classes)
    f.write("k,%d\n" % stored.k)
    f.write("n_items,%d\n" % stored.n_items)
    f.write("threshold,%s\n" % ("none" if stored.threshold is None else _hex_bits([stored.threshold])[0]))
    f.write("items\n")
    for i, row in enumerate(stored.items):
        values = _hex_bits(row) if stored.dtype == "float32" else [str(int(v)) for v in row]
        if stored.labels is not None:
            values.insert(0, str(int(stored.labels[i])))
        f.write(",".join(values) + "\n")


def dumps(stored: StoredNeighbors) -> str:
    out = io.StringIO()
    write(stored, out)
    return out.getvalue()


def save(stored: StoredNeighbors, path: str | os.PathLike) -> int:
    """Writes the file; returns its size in bytes."""
    text = dumps(stored)
    with open(path, "w", newline="\n") as f:
        f.write(text)
    return len(text.encode())


def read(f) -> StoredNeighbors:
    lines = ((n, line.strip()) for n, line in enumerate(f, 1))
    lines = ((n, line) for n, line in lines if line and not line.startswith("#"))

    def take(what):
        for n, line in lines:
            return n, line.split(",")
        raise FormatError("file ends here: expected %s" % what)

    def value(key, choices=None):
        n, fields = take(key)
        if len(fields) != 2 or fields[0] != key:
            raise FormatError("line %d: expected '%s,<value>', got %r" % (n, key, ",".join(fields)[:40]))
        if choices is not None and fields[1] not in choices:
            raise FormatError("line %d: %s must be one of %s, got %r" % (n, key, choices, fields[1]))
        return fields[1]

    if value(FORMAT) != str(FORMAT_VERSION):
        raise FormatError("format version not supported (this reader reads version %d)" % FORMAT_VERSION)
    kind = value("kind", (CLASSIFIER, NEIGHBORS))
    dtype = value("dtype", FEATURE_DTYPES)
    metric = value("metric", METRICS)
    weights = value("weights", WEIGHTS)
    n_features, n_classes, k, n_items = (int(value(key)) for key in ("n_features", "n_classes", "k", "n_items"))
    threshold_text = value("threshold")
    threshold = None if threshold_text == "none" else np.array([int(threshold_text, 16)], dtype=np.uint32).view(np.float32)[0]
    n, fields = take("the 'items' section line")
    if fields != ["items"]:
        raise FormatError("line %d: expected 'items', got %r" % (n, ",".join(fields)[:40]))
    labeled = kind == CLASSIFIER
    rows, labels = [], []
    for _ in range(n_items):
        n, fields = take("an item")
        if len(fields) != n_features + labeled:
            raise FormatError("line %d: an item needs %d fields, got %d" % (n, n_features + labeled, len(fields)))
        if labeled:
            labels.append(int(fields.pop(0)))
        rows.append([int(v, 16) if dtype == "float32" else int(v) for v in fields])
    for n, line in lines:
        raise FormatError("line %d: unexpected line after the last item: %r" % (n, line[:40]))
    if dtype == "float32":
        items = np.array(rows, dtype=np.uint32).reshape(n_items, n_features).view(np.float32)
    else:
        items = np.array(rows, dtype=np.int64).reshape(n_items, n_features)
    return StoredNeighbors(kind, dtype, metric, weights, k, items, np.array(labels, dtype=np.int64) if labeled else None,
                           n_classes, threshold)


def load(path: str | os.PathLike) -> StoredNeighbors:
    with open(path) as f:
        return read(f)
