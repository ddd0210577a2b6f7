# Reads the mpyml-trees text format (docs/formats.md) into a model made by
# emltrees.new(). Linked into emltrees.mpy beside the C glue,
# ../common/mpyml_records.py (_Records) and ../common/mpyml_steps.py
# (_read_steps, for version 2's pipeline steps); it streams the file one line
# at a time and hands each record to C, which validates it.
from array import array

FORMAT = "mpyml-trees"
FORMAT_VERSION = 2  # the newest this reader knows; version 1 has no steps section
_KINDS = {("classifier", "soft"): 1, ("classifier", "hard"): 2, ("regressor", "mean"): 3}
_DTYPES = {"int16": 1, "float32": 2}


def _soft_leaf(fields, n_classes):
    # class:weight pairs; probability = weight / sum of weights
    weights = [0] * n_classes
    total = 0
    for pair in fields:
        c, w = pair.split(":")
        c, w = int(c), int(w)
        if not 0 <= c < n_classes or w < 0:
            raise ValueError("leaf '%s': class must be 0..%d and weight >= 0" % (pair, n_classes - 1))
        weights[c] += w
        total += w
    return array("f", [w / total for w in weights] if total else weights)


def _read(model, records):
    version = records.value(FORMAT)
    if version not in ("1", "2"):
        raise ValueError("this file's format version is not supported (this emltrees reads versions 1 and 2)")
    kind = (records.value("kind"), records.value("voting"))
    if kind not in _KINDS:
        raise ValueError("unknown model kind '%s' with voting '%s'" % kind)
    dtype = records.value("dtype")
    if dtype not in _DTYPES:
        raise ValueError("unknown feature dtype '%s' (expected int16 or float32)" % dtype)
    n_features = records.count("n_features")
    if kind[0] == "classifier":
        n_classes = records.count("n_classes")
    else:
        n_classes = 0
        if records.count("n_outputs") != 1:
            raise ValueError("n_outputs must be 1 (single-output regressors only)")
    n_trees = records.count("n_trees")
    n_nodes = records.count("n_nodes")
    n_leaves = records.count("n_leaves")
    weight = 1.0 / n_trees if n_trees > 0 else 0.0
    model._begin(_KINDS[kind], _DTYPES[dtype], n_features, n_classes, n_trees, n_nodes, n_leaves, weight)
    if version == "2":
        fields = records.fields(5, "'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'")
        if fields[0] != "steps":
            raise ValueError("expected the 'steps,...' line, got '%s'" % ",".join(fields)[:40])
        n_steps = int(fields[2])
        model._steps(int(fields[1]), n_steps, int(fields[3]), int(fields[4]))
        _read_steps(model, records, n_steps)
    records.section("trees")
    for _ in range(n_trees):
        model._tree(int(records.fields(1, "a tree root")[0]))
    records.section("nodes")
    float32 = dtype == "float32"
    for _ in range(n_nodes):
        feature, threshold, left, right = records.fields(4, "a node")
        model._node(int(feature), threshold if float32 else int(threshold), int(left), int(right))
    records.section("leaves")
    soft = kind[1] == "soft"
    for _ in range(n_leaves):
        fields = records.fields(0 if soft else 1, "a leaf")
        model._leaf(_soft_leaf(fields, n_classes) if soft else array("f", [float(fields[0])]))
    records.end("leaf")
    model._finish()


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emltrees.new()."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emltrees.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.unload)
