# Reads the mpyml-trees text format (docs/formats.md) into a model made by
# emltrees.new(). Linked into emltrees.mpy beside the C glue,
# ../common/mpyml_records.py (_Records) and ../common/mpyml_steps.py
# (_steps_section, for the optional pipeline steps); it streams the file one line
# at a time and hands each record to C, which validates it.
from array import array

FORMAT = "mpyml-trees"
FORMAT_VERSION = 3
# (kind, voting, leaf_values) -> the C core's mpyml_trees_kind_t
_KINDS = {
    ("classifier", "soft", "counts"): 1,
    ("classifier", "hard", "class"): 2,
    ("regressor", "mean", "float32"): 3,
    ("classifier", "samme", "class"): 4,
    ("classifier", "soft", "float64"): 5,
    ("classifier", "boost", "float64"): 6,
    ("classifier", "boost", "float32"): 6,
    ("regressor", "boost", "float64"): 6,
    ("regressor", "boost", "float32"): 6,
}
_LINKS = {"identity": 0, "exp": 1, "logistic": 2, "softmax": 3, "isolation": 4}
_DTYPES = {"int16": 1, "float32": 2}
# (dtype, threshold_dtype) -> bytes per stored threshold
_THRESHOLD_BYTES = {("int16", "int8"): 1, ("int16", "int16"): 2, ("float32", "float32"): 4}
_NAN_LEFT = {"l": 1, "r": 0}


def _counts_leaf(fields, n_classes):
    # class:count pairs of the classes with a non-zero count
    counts = array("H", bytes(2 * n_classes))
    for pair in fields:
        c_w = pair.split(":")
        if len(c_w) != 2:
            raise ValueError("leaf '%s': expected class:count pairs" % pair[:30])
        c, w = _int(c_w[0], "a leaf class"), _int(c_w[1], "a leaf count")
        if not 0 <= c < n_classes or not 0 < w <= 65535 or counts[c]:
            raise ValueError("leaf '%s': class must be 0..%d, once, and its count 1..65535" % (pair[:30], n_classes - 1))
        counts[c] = w
    return counts


def _float64_leaf(fields, n_classes):
    # class:<16 hex digits> pairs of the classes with a non-zero probability -> n_classes x 16 hex digits
    hexes = ["0" * 16] * n_classes
    seen = bytearray(n_classes)
    for pair in fields:
        c_bits = pair.split(":")
        if len(c_bits) != 2:
            raise ValueError("leaf '%s': expected class:<16 hex digits> pairs" % pair[:30])
        c, bits = _int(c_bits[0], "a leaf class"), c_bits[1]
        if not 0 <= c < n_classes or len(bits) != 16 or seen[c]:
            raise ValueError("leaf '%s': class must be 0..%d, once, with 16 hex digits" % (pair[:30], n_classes - 1))
        seen[c] = 1
        hexes[c] = bits
    return "".join(hexes)


def _read(model, records):
    version = records.value(FORMAT)
    if version != str(FORMAT_VERSION):
        if version in ("1", "2"):
            raise ValueError("format version %s is no longer read by this emltrees (it reads version %d): export the model again"
                             % (version, FORMAT_VERSION))
        raise ValueError("format version %s is not supported (this emltrees reads version %d)" % (version[:12], FORMAT_VERSION))
    kind = (records.value("kind"), records.value("voting"), records.value("leaf_values"))
    if kind not in _KINDS:
        raise ValueError("unknown model kind '%s' with voting '%s' and leaf values '%s'" % kind)
    dtype = records.value("dtype")
    if dtype not in _DTYPES:
        raise ValueError("unknown feature dtype '%s' (expected int16 or float32)" % dtype)
    threshold_bytes = _THRESHOLD_BYTES.get((dtype, records.value("threshold_dtype")))
    if threshold_bytes is None:
        raise ValueError("threshold_dtype must be int8 or int16 with dtype int16, float32 with dtype float32")
    n_features = records.count("n_features")
    classifier = kind[0] == "classifier"
    if classifier:
        n_classes = records.count("n_classes")
    else:
        n_classes = 0
        if records.count("n_outputs") != 1:
            raise ValueError("n_outputs must be 1 (single-output regressors only)")
    n_trees = records.count("n_trees")
    n_nodes = records.count("n_nodes")
    n_leaves = records.count("n_leaves")
    n_steps = records.count("n_steps")
    weight = 1.0 / n_trees if n_trees > 0 else 0.0
    samme = kind[1] == "samme"
    boost = kind[1] == "boost"
    n_groups = link = n_pairs = max_count = n_totals = 0
    if kind[2] == "counts":
        key, n_pairs, max_count, n_totals = records.fields(4, "'pairs,<n_pairs>,<max_count>,<n_totals>'")
        if key != "pairs":
            raise ValueError("expected 'pairs,<n_pairs>,<max_count>,<n_totals>', got '%s'" % key[:20])
        n_pairs, max_count, n_totals = _int(n_pairs, "n_pairs"), _int(max_count, "max_count"), _int(n_totals, "n_totals")
    if boost:
        key, link, n_groups, threshold, scale, offset = records.fields(
            6, "'boost,<link>,<n_groups>,<threshold>,<scale>,<offset>'")
        if key != "boost" or link not in _LINKS:
            raise ValueError("expected 'boost,<link>,...' with link identity, exp, logistic, softmax or isolation, got '%s,%s'"
                             % (key[:20], link[:20]))
        link, n_groups = _LINKS[link], _int(n_groups, "n_groups")
    model._begin(_KINDS[kind], _DTYPES[dtype], n_features, n_classes, n_trees, n_nodes, n_leaves, weight,
                 n_groups, link, 1 if boost and kind[2] == "float64" else 0, threshold_bytes, n_pairs, max_count, n_totals)
    if boost:
        model._boost(threshold, scale, offset)
        base = records.fields(n_groups + 1, "'base' and one float64 per group")
        if base[0] != "base":
            raise ValueError("expected the 'base,...' line, got '%s'" % base[0][:20])
        for value in base[1:]:
            model._base(value)
    if samme:
        model._weight_sum(records.value("weight_sum"))
    if n_steps:
        fields = records.fields(5, "'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'")
        if fields[2] != str(n_steps):
            raise ValueError("expected the 'steps,...' line with n_steps=%d, got '%s'" % (n_steps, ",".join(fields)[:40]))
        _steps_section(model, records, fields)
    if classifier:
        classes = records.labels("classes")
        model._classes(classes)
    records.labels("feature_names")  # read for the end record's check; the device does not keep them
    records.section("trees")
    for _ in range(n_trees):
        if samme:
            root, vote, other = records.fields(3, "a tree record 'root,<vote>,<other>'")
            model._tree(_int(root, "a tree root"), vote, other)
        elif boost:
            root, group = records.fields(2, "a tree record 'root,<group>'")
            model._tree(_int(root, "a tree root"), _int(group, "a tree's group"))
        else:
            model._tree(_int(records.fields(1, "a tree root")[0], "a tree root"))
    records.section("nodes")
    float32 = dtype == "float32"
    for _ in range(n_nodes):
        if float32:
            feature, threshold, left, right, nan = records.fields(5, "a node 'feature,threshold,left,right,l|r'")
            if nan not in _NAN_LEFT:
                raise ValueError("a node's NaN direction must be 'l' or 'r', got '%s'" % nan[:10])
            model._node(_int(feature, "a feature index"), threshold, _int(left, "a child"), _int(right, "a child"), _NAN_LEFT[nan])
        else:
            feature, threshold, left, right = records.fields(4, "a node 'feature,threshold,left,right'")
            model._node(_int(feature, "a feature index"), _int(threshold, "a threshold"), _int(left, "a child"), _int(right, "a child"), 0)
    records.section("leaves")
    leaf_values = kind[2]
    for _ in range(n_leaves):
        if boost:
            model._leaf(records.fields(1, "a leaf")[0])
        elif leaf_values == "counts":
            model._leaf(_counts_leaf(records.fields(0, "a leaf"), n_classes))
        elif leaf_values == "float64":
            model._leaf(_float64_leaf(records.fields(0, "a leaf"), n_classes))
        elif leaf_values == "class":
            model._leaf(_int(records.fields(1, "a leaf")[0], "a leaf class"))
        else:
            model._leaf(_decimal(records.fields(1, "a leaf")[0], "a leaf value"))
    records.end("leaf")
    model._finish()


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emltrees.new()."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emltrees.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.unload)
