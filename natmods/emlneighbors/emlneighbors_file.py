# Reads and writes the mpyml-neighbors text format (docs/formats.md) for a
# model made by emlneighbors.new(). Linked into emlneighbors.mpy beside the C
# glue, ../common/mpyml_records.py (_Records) and ../common/mpyml_steps.py
# (_read_steps, for version 2's pipeline steps); it streams the file one line
# at a time and hands each item to C.
from array import array

FORMAT = "mpyml-neighbors"
FORMAT_VERSION = 2  # the newest this reader knows; version 1 has no steps section
_STEP_NAMES = {1: "affine", 2: "select", 3: "matrix"}
_DTYPES = {"int16": 1, "float32": 2}
_METRICS = {"euclidean": 1, "manhattan": 2, "chebyshev": 3}
_WEIGHTS = {"uniform": 1, "distance": 2}


def _hex32(text):
    if len(text) != 8:
        raise ValueError("expected 8 hex digits (IEEE-754 float32 bits), got '%s'" % text[:20])
    return int(text, 16)


def _bits_to_float32(bits):
    return array("f", bytearray(array("I", bits)))


def _float32_to_bits(values):
    return array("I", bytearray(values))


def _read(model, records):
    version = records.value(FORMAT)
    if version not in ("1", "2"):
        raise ValueError("this file's format version is not supported (this emlneighbors reads versions 1 and 2)")
    labeled = records.choice("kind", ("classifier", "neighbors")) == "classifier"
    dtype = records.choice("dtype", _DTYPES)
    metric = records.choice("metric", _METRICS)
    weights = records.choice("weights", _WEIGHTS)
    n_features = records.count("n_features")
    n_classes = records.count("n_classes")
    if labeled != (n_classes > 0):
        raise ValueError("n_classes must be at least 1 for a classifier and 0 for neighbors")
    k = records.count("k")
    n_items = records.count("n_items")
    if n_items < k or n_items > model.max_items:
        raise ValueError("n_items=%d: must be k=%d..%d (the max_items of emlneighbors.new())" % (n_items, k, model.max_items))
    threshold = records.value("threshold")
    threshold = None if threshold == "none" else _bits_to_float32([_hex32(threshold)])[0]
    model._begin(_DTYPES[dtype], _METRICS[metric], _WEIGHTS[weights], n_features, k, n_classes, threshold)
    if version == "2":
        fields = records.fields(5, "'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'")
        if fields[0] != "steps":
            raise ValueError("expected the 'steps,...' line, got '%s'" % ",".join(fields)[:40])
        n_steps = int(fields[2])
        model._steps(int(fields[1]), n_steps, int(fields[3]), int(fields[4]))
        _read_steps(model, records, n_steps)
    records.section("items")
    float32 = dtype == "float32"
    n_fields = n_features + 1 if labeled else n_features
    for _ in range(n_items):
        fields = records.fields(n_fields, "an item")
        label = int(fields[0]) if labeled else None
        values = fields[1:] if labeled else fields
        if float32:
            x = _bits_to_float32([_hex32(v) for v in values])
        else:
            ints = [int(v) for v in values]
            for v in ints:
                if not -32768 <= v <= 32767:
                    raise ValueError("int16 feature %d out of range -32768..32767" % v)
            x = array("h", ints)
        model.additem(x, label)
    records.end("item")
    model._finish()


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emlneighbors.new(); replaces its items."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emlneighbors.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.clear)


def save_model(model, f):
    """Writes the model's items and steps (an open text file, or a path) in the format load_model reads."""
    if not isinstance(model, Model):
        raise TypeError("save_model: expected a model from emlneighbors.new(), got %s" % type(model).__name__)
    if isinstance(f, str):
        with open(f, "w") as opened:
            return save_model(model, opened)
    if model.n_items == 0:
        raise RuntimeError("save_model: no items stored")
    labeled = bool(model.labeled)
    float32 = model.typecode == "f"
    threshold = model.threshold
    f.write("%s,%d\n" % (FORMAT, 2 if model.n_steps else 1))
    f.write("kind,%s\n" % ("classifier" if labeled else "neighbors"))
    f.write("dtype,%s\n" % ("float32" if float32 else "int16"))
    f.write("metric,%s\nweights,%s\n" % (model.metric, model.weights))
    f.write("n_features,%d\nn_classes,%d\nk,%d\nn_items,%d\n" % (model.n_features, model.n_classes, model.k, model.n_items))
    if threshold is None:
        f.write("threshold,none\n")
    else:
        f.write("threshold,%08x\n" % _float32_to_bits(array("f", [threshold]))[0])
    if model.n_steps:
        _write_steps(model, f)
    f.write("items\n")
    row = array(model.typecode, [0] * model.n_features)
    for i in range(model.n_items):
        label = model.getitem(i, row)
        values = ["%08x" % b for b in _float32_to_bits(row)] if float32 else [str(v) for v in row]
        if labeled:
            values.insert(0, str(label))
        f.write(",".join(values) + "\n")


def _step_rows(kind, n_in, n_out):
    # how the step's values split into lines: scales and shifts; matrix rows then biases
    if kind == 1:
        return [n_out, n_out]
    return [n_in] * n_out + [n_out]


def _write_steps(model, f):
    infos = [model._stepinfo(i) for i in range(model.n_steps)]
    sizes = [[n_out] if kind == 2 else _step_rows(kind, n_in, n_out) for kind, n_in, n_out in infos]
    max_width = model.n_input_features
    for _, _, n_out in infos:
        max_width = max(max_width, n_out)
    f.write("steps,%d,%d,%d,%d\n" % (model.n_input_features, len(infos), sum(sum(rows) for rows in sizes), max_width))
    for i, (kind, n_in, n_out) in enumerate(infos):
        f.write("step,%s,%d,%d\n" % (_STEP_NAMES[kind], n_in, n_out))
        values = array("I", bytes(4 * sum(sizes[i])))
        model._stepvalues(i, values)
        start = 0
        for width in sizes[i]:
            row = values[start:start + width]
            f.write(",".join(str(v) if kind == 2 else "%08x" % v for v in row) + "\n")
            start += width
