# Reads and writes the mpyml-neighbors text format (docs/formats.md) for a
# model made by emlneighbors.new(). Linked into emlneighbors.mpy beside the C
# glue (which provides _hex_row and _crc32), ../common/mpyml_records.py
# (_Records, the reader every text format shares) and ../common/mpyml_steps.py
# (_steps_section, the optional pipeline steps); it streams the file one line
# at a time and hands each item to C.
from array import array

FORMAT = "mpyml-neighbors"
FORMAT_VERSION = 3
_STEP_NAMES = {1: "affine", 2: "select", 3: "matrix"}
_DTYPES = {"int16": 1, "float32": 2}
_METRICS = {"euclidean": 1, "manhattan": 2, "chebyshev": 3}
_WEIGHTS = {"uniform": 1, "distance": 2}


def _read(model, records):
    version = records.value(FORMAT)
    if version != str(FORMAT_VERSION):
        if version in ("1", "2"):
            raise ValueError("version %s is no longer read by this emlneighbors (it reads version %d): export the model again"
                             % (version, FORMAT_VERSION))
        raise ValueError("this file's format version is not supported (this emlneighbors reads version %d)" % FORMAT_VERSION)
    labeled = records.choice("kind", ("classifier", "neighbors")) == "classifier"
    dtype = records.choice("dtype", _DTYPES)
    metric = records.choice("metric", _METRICS)
    weights = records.choice("weights", _WEIGHTS)
    n_features = records.count("n_features", 1, 65535)
    n_classes = records.count("n_classes", 0, 65535)
    if labeled != (n_classes > 0):
        raise ValueError("n_classes must be at least 1 for a classifier and 0 for neighbors")
    k = records.count("k", 1, 65535)
    n_items = records.count("n_items", 1, 1 << 24)
    if n_items < k or n_items > model.max_items:
        raise ValueError("n_items=%d: must be k=%d..%d (the max_items of emlneighbors.new())" % (n_items, k, model.max_items))
    threshold = records.value("threshold")
    if threshold != "none":
        threshold = _hex_row(threshold, array("f", [0]))[0]
    classes = None
    if labeled:
        classes = records.labels("classes")
        if len(classes) != n_classes:
            raise ValueError("%d classes, but n_classes is %d" % (len(classes), n_classes))
    feature_names = records.labels("feature_names") or None
    model._begin(_DTYPES[dtype], _METRICS[metric], _WEIGHTS[weights], n_features, k, n_classes,
                 None if threshold == "none" else threshold)
    fields = records.fields(0, "the 'items' section line (or 'steps,...' before it)")
    n_input_features = n_features
    if fields[0] == "steps":
        _steps_section(model, records, fields)
        n_input_features = int(fields[1])
        fields = records.fields(0, "the 'items' section line")
    if fields != ["items"]:
        raise ValueError("expected the 'items' section line, got '%s'" % ",".join(fields)[:40])
    if feature_names is not None and len(feature_names) != n_input_features:
        raise ValueError("%d feature names, but the model takes %d features" % (len(feature_names), n_input_features))
    if dtype == "float32":
        x = array("f", bytes(4 * n_features))
    else:
        x = array("h", bytes(2 * n_features))
    for _ in range(n_items):
        line = records.line()
        if line is None or line.startswith("end,"):
            raise ValueError(CORRUPT + "it ends after line %d, expected an item" % (records.lineno - (line is not None)))
        label = None
        if labeled:
            parts = line.split(",", 1)
            label = _int_in(parts[0], 0, n_classes - 1, "label")
            line = parts[1] if len(parts) > 1 else ""
        if dtype == "float32":
            _hex_row(line, x)
        else:
            values = line.split(",")
            if len(values) != n_features:
                raise ValueError("an item needs %d features, got %d" % (n_features, len(values)))
            for i in range(n_features):
                x[i] = _int_in(values[i], -32768, 32767, "an int16 feature")
        model.additem(x, label)
    records.end("item")
    model._finish(classes, feature_names)


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emlneighbors.new(); replaces its items."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emlneighbors.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.clear)


class _Sealed:
    # Writes lines to f, counting records and chaining the CRC-32 of every byte, for the end record.
    def __init__(self, f):
        self.f = f
        self.n_records = 0
        self.crc = 0

    def line(self, text):
        text += "\n"
        self.f.write(text)
        self.crc = _crc32(text, self.crc)
        self.n_records += 1

    def end(self):
        self.f.write("end,%d,%08x\n" % (self.n_records, self.crc))


def _write_labels(out, key, labels):
    # label records (docs/formats.md, "Labels") of a list of ints, strs, bools or floats
    kind = "str"  # an empty list (no feature names) is written as the host writes it
    if labels:
        first = type(labels[0])
        kind = {bool: "bool", int: "int", str: "str", float: "float"}.get(first)
        if kind is None or any(type(v) is not first for v in labels):
            raise TypeError("save_model: %s must all be int, str, bool or float" % key)
    out.line("%s,%s,%d" % (key, kind, len(labels)))
    for v in labels:
        if kind == "str":
            v = _escape(v)
        elif kind == "bool":
            v = "1" if v else "0"
        else:
            v = repr(v)
        out.line("label," + v)


def _escape(text):
    # %XX for the bytes '%', ',', '#', 0x00-0x20 and 0x7f (the inverse of _label_text)
    raw = bytearray()
    for b in text.encode():
        if b <= 32 or b in (35, 37, 44, 127):
            raw.extend(("%%%02X" % b).encode())
        else:
            raw.append(b)
    return raw.decode()


def save_model(model, f):
    """Writes the model's items, labels and steps (an open text file, or a path) in the format load_model reads."""
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
    out = _Sealed(f)
    out.line("%s,%d" % (FORMAT, FORMAT_VERSION))
    out.line("kind,%s" % ("classifier" if labeled else "neighbors"))
    out.line("dtype,%s" % ("float32" if float32 else "int16"))
    out.line("metric,%s" % model.metric)
    out.line("weights,%s" % model.weights)
    out.line("n_features,%d" % model.n_features)
    out.line("n_classes,%d" % model.n_classes)
    out.line("k,%d" % model.k)
    out.line("n_items,%d" % model.n_items)
    if threshold is None:
        out.line("threshold,none")
    else:
        out.line("threshold,%08x" % array("I", bytearray(array("f", [threshold])))[0])
    if labeled:
        # Items learned on the device without a file have class indices as their labels.
        classes = model.classes
        _write_labels(out, "classes", list(range(model.n_classes)) if classes is None else classes)
    _write_labels(out, "feature_names", model.feature_names or [])
    if model.n_steps:
        _write_steps(model, out)
    out.line("items")
    row = array(model.typecode, [0] * model.n_features)
    for i in range(model.n_items):
        label = model.getitem(i, row)
        if float32:
            values = ["%08x" % b for b in array("I", bytearray(row))]
        else:
            values = [str(v) for v in row]
        if labeled:
            values.insert(0, str(label))
        out.line(",".join(values))
    out.end()


def _step_rows(kind, n_in, n_out):
    # how the step's values split into lines: scales and shifts; matrix rows then biases
    if kind == 1:
        return [n_out, n_out]
    return [n_in] * n_out + [n_out]


def _write_steps(model, out):
    infos = [model._stepinfo(i) for i in range(model.n_steps)]
    sizes = [[n_out] if kind == 2 else _step_rows(kind, n_in, n_out) for kind, n_in, n_out in infos]
    max_width = model.n_input_features
    for _, _, n_out in infos:
        max_width = max(max_width, n_out)
    out.line("steps,%d,%d,%d,%d" % (model.n_input_features, len(infos), sum(sum(rows) for rows in sizes), max_width))
    for i, (kind, n_in, n_out) in enumerate(infos):
        out.line("step,%s,%d,%d" % (_STEP_NAMES[kind], n_in, n_out))
        values = array("I", bytes(4 * sum(sizes[i])))
        model._stepvalues(i, values)
        start = 0
        for width in sizes[i]:
            row = values[start:start + width]
            out.line(",".join(str(v) if kind == 2 else "%08x" % v for v in row))
            start += width
