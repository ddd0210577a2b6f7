"""Writer and reader of the mpyml-neighbors model file format (docs/formats.md)."""

from __future__ import annotations

import io
import os

import numpy as np

from .neighbors import CLASSIFIER, FEATURE_DTYPES, METRICS, NEIGHBORS, WEIGHTS, StoredNeighbors

FORMAT = "mpyml-neighbors"
FORMAT_VERSION = 1
# Version 2 adds a steps section (pipeline steps that map raw features to the items' space);
# version 1 files are written when there are none.
FORMAT_VERSION_STEPS = 2


class FormatError(ValueError):
    """The file is not a valid mpyml-neighbors file."""


def _hex_bits(values: np.ndarray) -> list[str]:
    return ["%08x" % b for b in np.asarray(values, dtype=np.float32).view(np.uint32)]


def write(stored: StoredNeighbors, f, steps=None) -> None:
    """Writes `stored` to an open text file; with `steps` (a transformer mpyml.linear.StoredChain
    whose output is the items' space), version 2 with the steps section."""
    if steps is not None and (stored.dtype != "float32" or steps.steps[-1].n_out != stored.n_features):
        raise ValueError("steps need float32 items whose n_features is the steps' output width")
    f.write("%s,%d\n" % (FORMAT, FORMAT_VERSION if steps is None else FORMAT_VERSION_STEPS))
    f.write("kind,%s\n" % stored.kind)
    f.write("dtype,%s\n" % stored.dtype)
    f.write("metric,%s\n" % stored.metric)
    f.write("weights,%s\n" % stored.weights)
    f.write("n_features,%d\n" % stored.n_features)
    f.write("n_classes,%d\n" % stored.n_classes)
    f.write("k,%d\n" % stored.k)
    f.write("n_items,%d\n" % stored.n_items)
    f.write("threshold,%s\n" % ("none" if stored.threshold is None else _hex_bits([stored.threshold])[0]))
    if steps is not None:
        from .linearfile import step_lines

        f.write("steps,%d,%d,%d,%d\n" % (steps.n_features, len(steps.steps), steps.n_values, steps.max_width))
        f.write("".join(line + "\n" for line in step_lines(steps.steps)))
    f.write("items\n")
    for i, row in enumerate(stored.items):
        values = _hex_bits(row) if stored.dtype == "float32" else [str(int(v)) for v in row]
        if stored.labels is not None:
            values.insert(0, str(int(stored.labels[i])))
        f.write(",".join(values) + "\n")


def dumps(stored: StoredNeighbors, steps=None) -> str:
    out = io.StringIO()
    write(stored, out, steps)
    return out.getvalue()


def save(stored: StoredNeighbors, path: str | os.PathLike, steps=None) -> int:
    """Writes the file (version 2 with `steps`); returns its size in bytes."""
    text = dumps(stored, steps)
    with open(path, "w", newline="\n") as f:
        f.write(text)
    return len(text.encode())


def read(f):
    """Reads a file written by :func:`write`: a StoredNeighbors, or for version 2 a
    mpyml.linear.StoredPipeline of its steps and items."""
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

    version = value(FORMAT)
    if version not in (str(FORMAT_VERSION), str(FORMAT_VERSION_STEPS)):
        raise FormatError("format version %s is not supported (expected %d or %d)" % (version, FORMAT_VERSION,
                                                                                    FORMAT_VERSION_STEPS))
    kind = value("kind", (CLASSIFIER, NEIGHBORS))
    dtype = value("dtype", FEATURE_DTYPES)
    metric = value("metric", METRICS)
    weights = value("weights", WEIGHTS)
    n_features, n_classes, k, n_items = (int(value(key)) for key in ("n_features", "n_classes", "k", "n_items"))
    threshold_text = value("threshold")
    threshold = None if threshold_text == "none" else np.array([int(threshold_text, 16)], dtype=np.uint32).view(np.float32)[0]
    steps = None
    if version == str(FORMAT_VERSION_STEPS):
        from .linear import TRANSFORMER, StoredChain
        from .linearfile import read_steps

        n, fields = take("the 'steps,...' line")
        if len(fields) != 5 or fields[0] != "steps":
            raise FormatError("line %d: expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>', got %r"
                              % (n, ",".join(fields)[:40]))
        steps = StoredChain(kind=TRANSFORMER, n_features=int(fields[1]), n_outputs=n_features, proba="none",
                            steps=read_steps(lambda: next(lines), int(fields[2])))
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
    stored = StoredNeighbors(kind, dtype, metric, weights, k, items, np.array(labels, dtype=np.int64) if labeled else None,
                             n_classes, threshold)
    if steps is None:
        return stored
    from .linear import StoredPipeline

    return StoredPipeline(steps=steps, model=stored)


def load(path: str | os.PathLike) -> StoredNeighbors:
    with open(path) as f:
        return read(f)
