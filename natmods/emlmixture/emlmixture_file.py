# Reads and writes the mpyml-mixture text format (docs/formats.md). Linked into emlmixture.mpy
# beside the C glue and ../common/mpyml_records.py; each record goes to C, which validates it.
from array import array

FORMAT = "mpyml-mixture"
_KINDS = ("", "mixture", "naive_bayes", "envelope", "kmeans")
_COVS = ("", "full", "tied", "diag", "spherical")


def _read(model, records):
    if records.value(FORMAT) != "1":
        raise ValueError("this file's format version is not supported (this emlmixture reads version 1)")
    kind = records.choice("kind", _KINDS[1:])
    cov = records.choice("covariance_type", _COVS[1:])
    n_features = records.count("n_features")
    n_components = records.count("n_components")
    model._begin(_KINDS.index(kind), _COVS.index(cov), n_features, n_components, records.value("threshold"))
    classes = records.labels("classes") if kind == "naive_bayes" else None
    records.section("values")
    for _ in range(model._n_rows()):
        line = records.line()
        if line is None:
            raise ValueError(CORRUPT + "it ends after line %d, expected a row of values" % records.lineno)
        model._row(line)
    records.end("row")
    model._finish(classes)


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emlmixture.new()."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emlmixture.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.unload)


def save_model(model, f):
    """Writes a loaded k-means model (centres and counts as partial_fit left them, weights) to a file or path."""
    if not isinstance(model, Model) or model.kind != "kmeans":
        raise TypeError("save_model: expected a loaded emlmixture k-means model")
    if isinstance(f, str):
        with open(f, "w") as opened:
            return save_model(model, opened)
    d, k, cov = model.n_features, model.n_components, model.covariance_type
    lines = ["%s,1" % FORMAT, "kind,kmeans", "covariance_type," + cov, "n_features,%d" % d,
             "n_components,%d" % k, "threshold,none", "values"]
    for r in range(k + 2 if cov == "diag" else k + 1):
        row = model._get_row(r, array("f", bytes(4 * (k if r == k else d))))
        lines.append(",".join("%08x" % b for b in array("I", bytearray(row))))
    crc = 0
    for line in lines:
        line += "\n"
        crc = _crc32(line, crc)
        f.write(line)
    f.write("end,%d,%08x\n" % (len(lines), crc))
