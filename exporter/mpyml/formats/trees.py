"""Writes and reads the mpyml-trees model file (specified in docs/formats.md).

The device-side reader is natmods/emltrees/emltrees.c (trees_read). Both check the end record
(formats.records).
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..boosting import Boost
from ..errors import FormatError
from ..linear import TRANSFORMER, StoredChain, StoredPipeline
from ..trees import (CLASSIFIER, LINKS, MAX_CHILD_OFFSET, MAX_CLASSES, MAX_COUNT, MAX_FEATURES, MAX_LEAVES, MAX_NODES, MAX_PAIRS,
                     StoredForest)
from . import records
from .linear import read_steps, step_lines

FORMAT = "mpyml-trees"
FORMAT_VERSION = 3
# The valid (kind, voting, leaf_values) triples; the device's limits (natmods/common/mpyml_trees.h) are mpyml.trees'.
KINDS = {("classifier", "soft", "counts"), ("classifier", "hard", "class"), ("regressor", "mean", "float32"),
         ("classifier", "samme", "class"), ("classifier", "soft", "float64"),
         ("classifier", "boost", "float64"), ("classifier", "boost", "float32"), ("regressor", "boost", "float64"),
         ("regressor", "boost", "float32")}
THRESHOLD_DTYPES = {("int16", "int8"), ("int16", "int16"), ("float32", "float32")}

__all__ = ["FORMAT", "FORMAT_VERSION", "dumps", "load", "read", "save", "write"]


def _float_text(value: np.float32) -> str:
    """Shortest decimal that reads back as the same float32 (e.g. '0.1', '1', '0.33333334')."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="-")
    scientific = np.format_float_scientific(np.float32(value), unique=True, trim="-")
    return min(text, scientific, key=len)


def _hex64(value: float) -> str:
    return "%016x" % int(np.float64(value).view(np.uint64))


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
    and forest. Checks what emltrees.load_model checks (end record, header, every record's fields and
    ranges, references, leaves) and raises FormatError("line N: ...") where the device refuses the file."""
    data = records.file_bytes(f)
    # The version comes first, as on the device: files before version 3 have no end record.
    first = data.split(b"\n", 1)[0].strip()
    if first in (b"%s,1" % FORMAT.encode(), b"%s,2" % FORMAT.encode()):
        raise FormatError("format version %s is no longer read (this mpyml reads version %d): export the model again"
                          % (first[-1:].decode(), FORMAT_VERSION))
    found = records.Records(data)
    version = found.value(FORMAT)
    if version != str(FORMAT_VERSION):
        raise FormatError("format version %s is not supported (expected %d)" % (version[:12], FORMAT_VERSION))
    kind, voting, leaf_kind = found.value("kind"), found.value("voting"), found.value("leaf_values")
    if (kind, voting, leaf_kind) not in KINDS:
        raise found.error("unknown model kind %r with voting %r and leaf values %r" % (kind[:20], voting[:20], leaf_kind[:20]))
    dtype = found.value("dtype")
    if dtype not in ("int16", "float32"):
        raise found.error("unknown feature dtype %r (expected int16 or float32)" % dtype[:20])
    threshold_dtype = found.value("threshold_dtype")
    if (dtype, threshold_dtype) not in THRESHOLD_DTYPES:
        raise found.error("threshold_dtype must be int8 or int16 for int16 forests and float32 for float32 forests")
    # The device's header checks (trees_read in emltrees.c, mpyml_forest_check_shape), in its order.
    n_features = found.count("n_features")
    classifier = kind == CLASSIFIER
    if classifier:
        n_classes = found.count("n_classes")
    else:
        n_classes = 0
        if found.count("n_outputs") != 1:
            raise found.error("n_outputs must be 1 (single-output regressors only)")
    n_trees, n_nodes, n_leaves, n_steps = (found.count(key) for key in ("n_trees", "n_nodes", "n_leaves", "n_steps"))
    if min(n_features, n_classes, n_trees, n_nodes, n_leaves) < 0:
        raise found.error("header values must be non-negative integers")
    if not 1 <= n_features <= MAX_FEATURES:
        raise found.error("n_features must be 1..%d for trees" % MAX_FEATURES)
    if n_classes > MAX_CLASSES or (classifier and n_classes < 1):
        raise found.error("n_classes must be at least 1 for a classifier")
    if n_trees > MAX_NODES or n_nodes > MAX_NODES:
        raise found.error("model too big for this device")
    if n_trees < 1:
        raise found.error("a forest needs at least one tree")
    if not 1 <= n_leaves <= MAX_LEAVES:
        raise found.error("n_leaves must be 1..%d" % MAX_LEAVES)
    if leaf_kind in ("counts", "float64") and n_leaves > MAX_NODES // n_classes:
        raise found.error("model too big for this device")
    weight_sum = found.hex64(found.value("weight_sum")) if voting == "samme" else None
    if weight_sum is not None and not (np.isfinite(weight_sum) and weight_sum > 0):
        raise found.error("the weight sum must be finite and > 0")
    pairs = None
    if leaf_kind == "counts":  # capacities, checked as mpyml_forest_check_shape does
        fields = found.fields(4, "'pairs,<n_pairs>,<max_count>,<n_totals>'")
        if fields[0] != "pairs":
            raise found.error("expected 'pairs,<n_pairs>,<max_count>,<n_totals>', got %r" % fields[0][:20])
        pairs = [found.int(v, None, None, "a pairs number") for v in fields[1:]]
        n_pairs, max_count, n_totals = pairs
        if (not n_leaves <= n_pairs <= MAX_PAIRS or not 1 <= max_count <= MAX_COUNT or not 1 <= n_totals <= n_leaves
                or 1 + (n_classes - 1).bit_length() + max_count.bit_length() > 32):
            raise found.error("soft-vote leaves: pairs and totals must fit the header's 'pairs,<n_pairs>,<max_count>,<n_totals>'")
    boost = None
    if voting == "boost":
        fields = found.fields(6, "'boost,<link>,<n_groups>,<threshold>,<scale>,<offset>'")
        if fields[0] != "boost" or fields[1] not in LINKS:
            raise found.error("expected 'boost,<link>,...' with link %s, got %r" % (", ".join(LINKS), ",".join(fields[:2])[:40]))
        n_groups = found.int(fields[2], 1, n_trees, "n_groups")
        threshold_value, scale, offset = (found.hex64(v) for v in fields[3:])
        base = found.fields(n_groups + 1, "'base' and one float64 per group")
        if base[0] != "base":
            raise found.error("expected the 'base,...' line, got %r" % base[0][:20])
        boost = Boost(sums=leaf_kind, link=fields[1], scale=scale, groups=None, threshold=threshold_value, offset=offset,
                      base=np.array([found.hex64(v) for v in base[1:]]))
    steps = None
    if n_steps:
        fields = found.fields(5, "'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'")
        if fields[2] != str(n_steps):
            raise found.error("expected the 'steps,...' line with n_steps=%d, got %r" % (n_steps, ",".join(fields)[:40]))
        if fields[0] != "steps":
            raise found.error("expected 'steps,...', got %r" % ",".join(fields)[:40])
        n_input = found.int(fields[1], 1, 65535, "n_input_features")
        found.int(fields[2], 1, 255, "n_steps")
        n_values = found.int(fields[3], 0, 2**30 - 1, "n_values")
        max_width = found.int(fields[4], 1, 65535, "max_width")
        if dtype != "float32" or n_input > max_width:
            raise found.error("steps need a float32 forest, and n_input_features at most max_width")
        steps = StoredChain(kind=TRANSFORMER, n_features=n_input, n_outputs=n_features, proba="none",
                            steps=read_steps(found, n_steps))
        if steps.steps[0].n_in != n_input or (steps.n_values, steps.max_width) != (n_values, max_width):
            raise found.error("the steps do not match the steps line's n_input_features, n_values or max_width")
        if steps.steps[-1].n_out != n_features:
            raise found.error("the steps give %d features, the forest has %d" % (steps.steps[-1].n_out, n_features))
    classes = (found.labels("classes") or []) if classifier else None
    if classifier and len(classes) != n_classes:
        raise found.error("%d classes, but n_classes is %d" % (len(classes), n_classes))
    feature_names = found.labels("feature_names") or []
    found.section("trees")

    def ref(text, what):  # a root or child reference, range-checked as the device's get_ref
        value = found.int(text, None, None, what)
        if not -MAX_LEAVES <= value <= MAX_NODES:
            raise found.error("node reference past the last node")
        return value

    def check_leaf(value):
        if -(value + 1) >= n_leaves:
            raise found.error("leaf reference past the last leaf")

    roots, tree_votes, groups = [], [], []
    for _ in range(n_trees):
        fields = found.fields(3 if voting == "samme" else 2 if voting == "boost" else 1, "a tree record")
        root = ref(fields[0], "a tree root")
        if root >= 0 and root >= n_nodes:
            raise found.error("node reference past the last node")
        if root < 0:
            check_leaf(root)
        if voting == "samme":
            vote, other = found.hex64(fields[1]), found.hex64(fields[2])
            if not (np.isfinite(vote) and np.isfinite(other) and vote >= 0 and other <= 0):
                raise found.error("tree weight must be finite and >= 0")
            tree_votes.append([vote, other])
        if voting == "boost":
            groups.append(found.int(fields[1], 0, boost.n_groups - 1, "a tree's group"))
        roots.append(root)
    found.section("nodes")
    float32 = dtype == "float32"
    feature, threshold, left, right, nan_left = [], [], [], [], []
    for i in range(n_nodes):
        fields = found.fields(5 if float32 else 4, "a node")
        if float32 and fields[4] not in ("l", "r"):
            raise found.error("a node's NaN direction must be 'l' or 'r', got %r" % fields[4][:10])
        f = found.int(fields[0], None, None, "a feature index")
        if float32:
            t = np.uint32(found.hex32(fields[1])).view(np.float32)
        else:
            t = found.int(fields[1], None, None, "a threshold")
        children = [ref(fields[2], "a child"), ref(fields[3], "a child")]
        if not 0 <= f <= MAX_FEATURES:
            raise found.error("feature index not below n_features")
        if f >= n_features:
            raise found.error("feature index not below n_features")
        for child in children:
            if child < 0:
                check_leaf(child)
            elif child == 0:
                raise found.error("child offset must be positive")
            elif child > MAX_CHILD_OFFSET:
                raise found.error("child offset above %d" % MAX_CHILD_OFFSET)
            elif child >= n_nodes - i:
                raise found.error("node reference past the last node")
        if float32 and np.isnan(t):
            raise found.error("threshold is NaN")
        if not float32 and not -32768 <= t <= 32767:
            raise found.error("int16 threshold out of range -32768..32767")
        feature.append(f)
        threshold.append(t)
        left.append(i + children[0] if children[0] > 0 else children[0])
        right.append(i + children[1] if children[1] > 0 else children[1])
        nan_left.append(float32 and fields[4] == "l")
    found.section("leaves")
    soft = leaf_kind in ("counts", "float64") and voting != "boost"
    leaves = np.zeros((n_leaves, n_classes if soft else 1), dtype=np.int64 if leaf_kind in ("counts", "class") else np.float64)
    for i in range(n_leaves):
        fields = found.fields(0 if soft else 1, "a leaf")
        if soft:
            seen = set()
            for pair in fields:
                c_w = pair.split(":")
                if len(c_w) != 2:
                    raise found.error("leaf %r: expected class:<value> pairs" % pair[:30])
                c = found.int(c_w[0], None, None, "a leaf class")
                if not 0 <= c < n_classes or c in seen:
                    raise found.error("leaf %r: class must be 0..%d, once" % (pair[:30], n_classes - 1))
                seen.add(c)
                if leaf_kind == "counts":
                    w = found.int(c_w[1], None, None, "a leaf count")
                    if not 0 < w <= MAX_COUNT:
                        raise found.error("leaf %r: its count must be 1..65535" % pair[:30])
                    leaves[i, c] = w
                else:
                    p = found.hex64(c_w[1])
                    if not 0.0 <= p <= 1.0:
                        raise found.error("leaf probabilities must be finite and in 0..1")
                    leaves[i, c] = p
        elif voting == "boost":  # the leaf value as hex bits of its float64 or float32
            if leaf_kind == "float64":
                v = found.hex64(fields[0])
            else:
                v = float(np.uint32(found.hex32(fields[0])).view(np.float32))
            if not np.isfinite(v):
                raise found.error("leaf value is not finite")
            leaves[i, 0] = v
        elif leaf_kind == "class":
            c = found.int(fields[0], None, None, "a leaf class")
            if not 0 <= c < n_classes:
                raise found.error("leaf class not an integer below n_classes")
            leaves[i, 0] = c
        else:
            v = np.float32(found.checked(records.parse_decimal, fields[0], "a leaf value"))
            if not np.isfinite(v):
                raise found.error("leaf value is not finite")
            leaves[i, 0] = v
    found.end("leaf")

    forest = StoredForest(
        kind=kind,
        voting=None if voting == "mean" else voting,
        dtype=dtype,
        n_features=n_features,
        n_classes=n_classes,
        roots=np.array(roots, dtype=np.int64),
        feature=np.array(feature, dtype=np.int64),
        threshold=np.array(threshold, dtype=np.float32 if float32 else np.int64),
        left=np.array(left, dtype=np.int64),
        right=np.array(right, dtype=np.int64),
        nan_left=np.array(nan_left, dtype=bool),
        leaves=leaves,
        leaf_kind=leaf_kind,
        classes=records.label_array(classes) if classifier else None,
        feature_names=np.asarray(feature_names) if feature_names else None,
        tree_votes=np.array(tree_votes, dtype=np.float64).reshape(-1, 2) if voting == "samme" else None,
        weight_sum=weight_sum,
        boost=boost,
    )
    if boost is not None:
        boost.groups = np.array(groups, dtype=np.int64)
    if threshold_dtype == "int8" and len(forest.threshold) and not (-128 <= forest.threshold.min() <= forest.threshold.max() <= 127):
        raise FormatError("threshold_dtype int8, but a threshold is outside -128..127")
    if pairs is not None:
        n_pairs, max_count, n_totals = pairs
        nonzero = leaves[leaves > 0]
        if (np.count_nonzero(leaves) > n_pairs or nonzero.max(initial=0) > max_count
                or len(np.unique(leaves.sum(axis=1))) > n_totals):
            raise FormatError("soft-vote leaves: pairs and totals must fit the header's "
                              "'pairs,<n_pairs>,<max_count>,<n_totals>'")
    if steps is None:
        return forest
    return StoredPipeline(steps=steps, model=forest)


def load(path: str | os.PathLike):
    with open(path, "rb") as f:
        return read(f.read())
