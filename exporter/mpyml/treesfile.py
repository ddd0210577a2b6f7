"""Writes and reads the mpyml-trees model file (specified in docs/formats.md).

The device-side reader is natmods/emltrees/emltrees_load.py.
"""

from __future__ import annotations

import io
import os

import numpy as np

from .trees import CLASSIFIER, StoredForest

FORMAT = "mpyml-trees"
FORMAT_VERSION = 1
# Version 2 adds a steps section (pipeline steps run before the forest); version 1 files are written when there are none.
FORMAT_VERSION_STEPS = 2


def _float_text(value: np.float32) -> str:
    """Shortest decimal that reads back as the same float32 (e.g. '0.1', '1', '0.33333334')."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="-")
    scientific = np.format_float_scientific(np.float32(value), unique=True, trim="-")
    return min(text, scientific, key=len)


def _threshold_text(stored: StoredForest, threshold) -> str:
    if stored.dtype == "float32":
        return "%08x" % int(np.asarray(threshold, dtype=np.float32).view(np.uint32))
    return str(int(threshold))


def dumps(stored: StoredForest) -> str:
    out = io.StringIO()
    write(stored, out)
    return out.getvalue()


def _child_text(index: int, child: int) -> str:
    """Children are stored relative: a positive offset to a later node, or a negative leaf reference."""
    return str(child - index if child >= 0 else child)


def _leaf_text(stored: StoredForest, leaf: np.ndarray) -> str:
    if stored.voting == "soft":
        return ",".join("%d:%d" % (c, w) for c, w in enumerate(leaf) if w) or "0:0"
    if stored.voting == "hard":
        return str(int(leaf[0]))
    return _float_text(leaf[0])


def write(stored: StoredForest, f, steps=None) -> None:
    """Writes `stored` to an open text file; with `steps` (a transformer mpyml.linear.StoredChain
    whose output is the forest's input), version 2 with the steps section."""
    n_values_key = ("n_classes", stored.n_classes) if stored.kind == CLASSIFIER else ("n_outputs", 1)
    header = [
        (FORMAT, FORMAT_VERSION if steps is None else FORMAT_VERSION_STEPS),
        ("kind", stored.kind),
        ("voting", stored.voting or "mean"),
        ("dtype", stored.dtype),
        ("n_features", stored.n_features),
        n_values_key,
        ("n_trees", stored.n_trees),
        ("n_nodes", stored.n_nodes),
        ("n_leaves", stored.n_leaves),
    ]
    lines = ["%s,%s" % kv for kv in header]
    if steps is not None:
        from .linearfile import step_lines

        if stored.dtype != "float32" or steps.steps[-1].n_out != stored.n_features:
            raise ValueError("steps need a float32 forest whose n_features is the steps' output width")
        lines.append("steps,%d,%d,%d,%d" % (steps.n_features, len(steps.steps), steps.n_values, steps.max_width))
        lines += step_lines(steps.steps)
    lines.append("trees")
    lines += [str(root) for root in stored.roots]
    lines.append("nodes")
    for i in range(stored.n_nodes):
        lines.append("%d,%s,%s,%s" % (stored.feature[i], _threshold_text(stored, stored.threshold[i]),
                                      _child_text(i, stored.left[i]), _child_text(i, stored.right[i])))
    lines.append("leaves")
    lines += [_leaf_text(stored, leaf) for leaf in stored.leaves]
    f.write("\n".join(lines) + "\n")


def save(stored: StoredForest, path: str | os.PathLike, steps=None) -> int:
    """Writes the model file; returns its size in bytes."""
    with open(path, "w", newline="\n") as f:
        write(stored, f, steps)
    return os.path.getsize(path)


class FormatError(ValueError):
    pass


def read(f):
    """Reads a model file written by :func:`write` (used by tests and `mpyml inspect`): a StoredForest,
    or for version 2 a mpyml.linear.StoredPipeline of its steps and forest."""
    stripped = [(i + 1, line.strip()) for i, line in enumerate(f)]
    records = iter([(n, line) for n, line in stripped if line and not line.startswith("#")])

    def take(n_fields=None, section=None):
        try:
            lineno, line = next(records)
        except StopIteration:
            raise FormatError("file ends early") from None
        fields = line.split(",")
        if (section is not None and fields[0] != section) or (n_fields is not None and len(fields) != n_fields):
            raise FormatError("line %d: expected %s, got %r" % (lineno, section or "%d fields" % n_fields, line))
        return fields

    def value(key):
        return take(2, key)[1]

    version = value(FORMAT)
    if version not in (str(FORMAT_VERSION), str(FORMAT_VERSION_STEPS)):
        raise FormatError("format version %s is not supported (expected %d or %d)" % (version, FORMAT_VERSION,
                                                                                    FORMAT_VERSION_STEPS))
    kind, voting, dtype = value("kind"), value("voting"), value("dtype")
    n_features = int(value("n_features"))
    n_classes = int(value("n_classes")) if kind == CLASSIFIER else int(value("n_outputs")) - 1
    n_trees, n_nodes, n_leaves = (int(value(key)) for key in ("n_trees", "n_nodes", "n_leaves"))
    steps = None
    if version == str(FORMAT_VERSION_STEPS):
        from .linear import TRANSFORMER, StoredChain
        from .linearfile import read_steps

        fields = take(5, "steps")
        steps = read_steps(lambda: next(records), int(fields[2]))
        steps = StoredChain(kind=TRANSFORMER, n_features=int(fields[1]), n_outputs=n_features, proba="none", steps=steps)
    take(1, "trees")
    roots = [int(take(1)[0]) for _ in range(n_trees)]
    take(1, "nodes")
    nodes = [take(4) for _ in range(n_nodes)]
    take(1, "leaves")
    width = n_classes if voting == "soft" else 1
    leaves = np.zeros((n_leaves, width), dtype=np.float64)
    for i in range(n_leaves):
        fields = take()
        if voting == "soft":
            for pair in fields:
                c, w = pair.split(":")
                leaves[i, int(c)] = int(w)
        else:
            leaves[i, 0] = float(fields[0])
    if dtype == "float32":
        threshold = np.array([int(n[1], 16) for n in nodes], dtype=np.uint32).view(np.float32)
    else:
        threshold = np.array([int(n[1]) for n in nodes], dtype=np.int64)

    def absolute(index, child):
        child = int(child)
        return index + child if child > 0 else child

    forest = StoredForest(
        kind=kind,
        voting=None if voting == "mean" else voting,
        dtype=dtype,
        n_features=n_features,
        n_classes=n_classes,
        roots=np.array(roots, dtype=np.int64),
        feature=np.array([int(n[0]) for n in nodes], dtype=np.int64),
        threshold=threshold,
        left=np.array([absolute(i, n[2]) for i, n in enumerate(nodes)], dtype=np.int64),
        right=np.array([absolute(i, n[3]) for i, n in enumerate(nodes)], dtype=np.int64),
        leaves=leaves,
    )
    if steps is None:
        return forest
    from .linear import StoredPipeline

    return StoredPipeline(steps=steps, model=forest)


def load(path: str | os.PathLike) -> StoredForest:
    with open(path) as f:
        return read(f)
