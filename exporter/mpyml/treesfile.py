"""Writes and reads the mpyml-trees model file (specified in docs/formats.md).

The device-side reader is natmods/emltrees/emltrees_load.py. Both check the end record
(records.seal / records.records).
"""

from __future__ import annotations

import io
import os

import numpy as np

from . import records
from .records import FormatError
from .trees import CLASSIFIER, StoredForest

FORMAT = "mpyml-trees"
FORMAT_VERSION = 3

__all__ = ["FORMAT", "FORMAT_VERSION", "FormatError", "dumps", "load", "read", "save", "write"]


def _float_text(value: np.float32) -> str:
    """Shortest decimal that reads back as the same float32 (e.g. '0.1', '1', '0.33333334')."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="-")
    scientific = np.format_float_scientific(np.float32(value), unique=True, trim="-")
    return min(text, scientific, key=len)


def _hex64(value: float) -> str:
    return "%016x" % int(np.float64(value).view(np.uint64))


def _from_hex64(text: str) -> float:
    if len(text) != 16:
        raise FormatError("expected 16 hex digits, got %r" % text[:20])
    return float(np.uint64(int(text, 16)).view(np.float64))


def _threshold_text(stored: StoredForest, threshold) -> str:
    if stored.dtype == "float32":
        return "%08x" % int(np.asarray(threshold, dtype=np.float32).view(np.uint32))
    return str(int(threshold))


def _child_text(index: int, child: int) -> str:
    """Children are stored relative: a positive offset to a later node, or a negative leaf reference."""
    return str(child - index if child >= 0 else child)


def _leaf_text(stored: StoredForest, leaf: np.ndarray) -> str:
    if stored.voting == "boost":
        if stored.leaf_kind == "float64":
            return _hex64(leaf[0])
        return "%08x" % int(np.float32(leaf[0]).view(np.uint32))
    if stored.leaf_kind == "counts":
        return ",".join("%d:%d" % (c, w) for c, w in enumerate(leaf) if w)
    if stored.leaf_kind == "float64":
        return ",".join("%d:%s" % (c, _hex64(p)) for c, p in enumerate(leaf) if p)
    if stored.leaf_kind == "class":
        return str(int(leaf[0]))
    return _float_text(leaf[0])


def dumps(stored: StoredForest, steps=None) -> str:
    out = io.StringIO()
    write(stored, out, steps)
    return out.getvalue()


def write(stored: StoredForest, f, steps=None) -> None:
    """Writes `stored` to an open text file; with `steps` (a transformer mpyml.linear.StoredChain
    whose output is the forest's input), with the steps section."""
    classifier = stored.kind == CLASSIFIER
    header = [
        (FORMAT, FORMAT_VERSION),
        ("kind", stored.kind),
        ("voting", stored.voting or "mean"),
        ("leaf_values", stored.leaf_kind),
        ("dtype", stored.dtype),
        ("threshold_dtype", stored.threshold_dtype),
        ("n_features", stored.n_features if steps is None else stored.n_features),
        ("n_classes", stored.n_classes) if classifier else ("n_outputs", 1),
        ("n_trees", stored.n_trees),
        ("n_nodes", stored.n_nodes),
        ("n_leaves", stored.n_leaves),
        ("n_steps", 0 if steps is None else len(steps.steps)),
    ]
    if stored.voting == "samme":
        header.append(("weight_sum", _hex64(stored.weight_sum)))
    lines = ["%s,%s" % kv for kv in header]
    if stored.leaf_kind == "counts":
        lines.append("pairs,%d,%d,%d" % stored.pair_stats())
    if stored.voting == "boost":
        b = stored.boost
        lines.append("boost,%s,%d,%s,%s,%s" % (b.link, b.n_groups, _hex64(b.threshold), _hex64(b.scale), _hex64(b.offset)))
        lines.append(",".join(["base"] + [_hex64(v) for v in b.base]))
    if steps is not None:
        from .linearfile import step_lines

        if stored.dtype != "float32" or steps.steps[-1].n_out != stored.n_features:
            raise ValueError("steps need a float32 forest whose n_features is the steps' output width")
        lines.append("steps,%d,%d,%d,%d" % (steps.n_features, len(steps.steps), steps.n_values, steps.max_width))
        lines += step_lines(steps.steps)
    if classifier:
        if stored.classes is None:
            raise ValueError("a classifier's file needs its classes")
        lines += records.label_lines("classes", list(stored.classes))
    if stored.feature_names is not None and len(stored.feature_names):
        lines += records.label_lines("feature_names", list(stored.feature_names))
    else:
        lines.append("feature_names,str,0")
    lines.append("trees")
    for t, root in enumerate(stored.roots):
        if stored.voting == "samme":
            lines.append("%d,%s,%s" % (root, _hex64(stored.tree_votes[t, 0]), _hex64(stored.tree_votes[t, 1])))
        elif stored.voting == "boost":
            lines.append("%d,%d" % (root, stored.boost.groups[t]))
        else:
            lines.append(str(root))
    lines.append("nodes")
    float32 = stored.dtype == "float32"
    for i in range(stored.n_nodes):
        line = "%d,%s,%s,%s" % (stored.feature[i], _threshold_text(stored, stored.threshold[i]),
                                _child_text(i, stored.left[i]), _child_text(i, stored.right[i]))
        lines.append(line + (",l" if stored.nan_left[i] else ",r") if float32 else line)
    lines.append("leaves")
    lines += [_leaf_text(stored, leaf) for leaf in stored.leaves]
    f.write(records.seal("\n".join(lines) + "\n"))


def save(stored: StoredForest, path: str | os.PathLike, steps=None) -> int:
    """Writes the model file; returns its size in bytes."""
    with open(path, "w", newline="\n") as f:
        write(stored, f, steps)
    return os.path.getsize(path)


def read(f):
    """Reads a model file written by :func:`write` (bytes, str, an open file or a list of lines; used by
    tests and `mpyml inspect`): a StoredForest, or with steps a mpyml.linear.StoredPipeline of its steps
    and forest. Raises FormatError for a file the device would refuse at its end record or version."""
    if hasattr(f, "read"):
        f = f.read()
    if isinstance(f, (list, tuple)):
        f = "".join(f)
    if isinstance(f, str):
        f = f.encode()
    # The version comes first, as on the device: files before version 3 have no end record.
    first = f.split(b"\n", 1)[0].strip()
    if first in (b"%s,1" % FORMAT.encode(), b"%s,2" % FORMAT.encode()):
        raise FormatError("format version %s is no longer read (this mpyml reads version %d): export the model again"
                          % (first[-1:].decode(), FORMAT_VERSION))
    found = iter(records.records(f))

    def take(n_fields=None, section=None):
        try:
            lineno, line = next(found)
        except StopIteration:
            raise FormatError("file ends early") from None
        fields = line.split(",")
        if (section is not None and fields[0] != section) or (n_fields is not None and len(fields) != n_fields):
            raise FormatError("line %d: expected %s, got %r" % (lineno, section or "%d fields" % n_fields, line))
        return fields

    def value(key):
        return take(2, key)[1]

    def labels(key):
        _, kind, n = take(3, key)
        return [records.parse_label(kind, take(2, "label")[1]) for _ in range(int(n))]

    version = value(FORMAT)
    if version != str(FORMAT_VERSION):
        raise FormatError("format version %s is not supported (expected %d)" % (version, FORMAT_VERSION))
    kind, voting, leaf_kind, dtype = value("kind"), value("voting"), value("leaf_values"), value("dtype")
    threshold_dtype = value("threshold_dtype")
    n_features = int(value("n_features"))
    n_classes = int(value("n_classes")) if kind == CLASSIFIER else int(value("n_outputs")) - 1
    n_trees, n_nodes, n_leaves, n_steps = (int(value(key)) for key in ("n_trees", "n_nodes", "n_leaves", "n_steps"))
    weight_sum = _from_hex64(value("weight_sum")) if voting == "samme" else None
    pairs = take(4, "pairs")[1:] if leaf_kind == "counts" else None
    boost = None
    if voting == "boost":
        from .boosting import Boost

        _, link, n_groups, threshold_bits, scale_bits, offset_bits = take(6, "boost")
        base = take(1 + int(n_groups), "base")[1:]
        boost = Boost(sums=leaf_kind, link=link, scale=_from_hex64(scale_bits), groups=None,
                      base=np.array([_from_hex64(v) for v in base]), threshold=_from_hex64(threshold_bits),
                      offset=_from_hex64(offset_bits))
    steps = None
    if n_steps:
        from .linear import TRANSFORMER, StoredChain
        from .linearfile import read_steps

        fields = take(5, "steps")
        steps = read_steps(lambda: next(found), int(fields[2]))
        steps = StoredChain(kind=TRANSFORMER, n_features=int(fields[1]), n_outputs=n_features, proba="none", steps=steps)
    classes = np.asarray(labels("classes")) if kind == CLASSIFIER else None
    feature_names = labels("feature_names")
    take(1, "trees")
    roots, tree_votes = [], []
    groups = []
    for _ in range(n_trees):
        fields = take(3 if voting == "samme" else 2 if voting == "boost" else 1)
        roots.append(int(fields[0]))
        if voting == "samme":
            tree_votes.append([_from_hex64(fields[1]), _from_hex64(fields[2])])
        if voting == "boost":
            groups.append(int(fields[1]))
    if boost is not None:
        boost.groups = np.array(groups, dtype=np.int64)
    take(1, "nodes")
    nodes = [take(5 if dtype == "float32" else 4) for _ in range(n_nodes)]
    take(1, "leaves")
    soft = leaf_kind in ("counts", "float64") and voting != "boost"
    width = n_classes if soft else 1
    leaves = np.zeros((n_leaves, width), dtype=np.float64 if leaf_kind in ("float64", "float32") else np.int64)
    for i in range(n_leaves):
        fields = take()
        if soft:
            for pair in fields:
                c, w = pair.split(":")
                leaves[i, int(c)] = int(w) if leaf_kind == "counts" else _from_hex64(w)
        elif voting == "boost":
            text = fields[0]
            leaves[i, 0] = _from_hex64(text) if leaf_kind == "float64" else float(
                np.uint32(int(text, 16)).view(np.float32))
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
        nan_left=np.array([len(n) == 5 and n[4] == "l" for n in nodes], dtype=bool),
        leaves=leaves,
        leaf_kind=leaf_kind,
        classes=classes,
        feature_names=np.asarray(feature_names) if feature_names else None,
        tree_votes=np.array(tree_votes, dtype=np.float64).reshape(-1, 2) if voting == "samme" else None,
        weight_sum=weight_sum,
        boost=boost,
    )
    if threshold_dtype != forest.threshold_dtype or (pairs is not None and tuple(map(int, pairs)) != forest.pair_stats()):
        raise FormatError("threshold_dtype or the pairs line does not match the nodes and leaves")
    if steps is None:
        return forest
    from .linear import StoredPipeline

    return StoredPipeline(steps=steps, model=forest)


def load(path: str | os.PathLike):
    with open(path, "rb") as f:
        return read(f.read())
