# Reads the mpyml-linear text format (docs/formats.md) into a model made by
# emllinear.new(). Linked into emllinear.mpy beside the C glue,
# ../common/mpyml_records.py (_Records) and ../common/mpyml_steps.py
# (_read_steps); it streams the file one line at a time and hands each record
# to C, which validates it.
from array import array

FORMAT = "mpyml-linear"
FORMAT_VERSION = 2
_KINDS = {"classifier": 1, "regressor": 2, "transformer": 3}
_PROBA = {"none": 0, "logistic": 1, "softmax": 2, "ovr": 3}


def _read(model, records):
    version = records.value(FORMAT)
    if version != str(FORMAT_VERSION):
        if version == "1":
            raise ValueError("version 1 is no longer read by this emllinear (it reads version %d): export the model again"
                             % FORMAT_VERSION)
        raise ValueError("this file's format version is not supported (this emllinear reads version %d)" % FORMAT_VERSION)
    kind = records.choice("kind", _KINDS)
    proba = records.choice("proba", _PROBA)
    n_features = records.count("n_features", 1, 65535)
    n_outputs = records.count("n_outputs", 1, 65535)
    n_steps = records.count("n_steps", 1, _MAX_STEPS)
    n_values = records.count("n_values", 0, _MAX_VALUES)
    records.check_size(n_values, 2, "step values")  # each takes at least 2 bytes, '0,'
    max_width = records.count("max_width", 1, _MAX_WIDTH)
    classes = None
    if kind == "classifier":
        classes = records.labels("classes")
        if len(classes) != n_outputs:
            raise ValueError("%d classes, but n_outputs is %d" % (len(classes), n_outputs))
    feature_names = records.labels("feature_names") or None
    if feature_names is not None and len(feature_names) != n_features:
        raise ValueError("%d feature names, but n_features is %d" % (len(feature_names), n_features))
    model._begin(_KINDS[kind], _PROBA[proba], n_features, n_outputs, n_steps, n_values, max_width)
    _read_steps(model, records, n_steps)
    records.end("step")
    model._finish(classes, feature_names)


def load_model(model, f):
    """Loads a model file (an open file, or a path) into `model` from emllinear.new()."""
    if not isinstance(model, Model):
        raise TypeError("load_model: expected a model from emllinear.new(), got %s" % type(model).__name__)
    _read_file(f, lambda records: _read(model, records), model.unload)


class Pipeline:
    """A transformer `steps` (this module) feeding `model` (an emltrees or emlneighbors Model):
    predict(x) from raw features, allocating nothing (the steps' output row is kept here)."""

    def __init__(self, steps, model):
        if not isinstance(steps, Model) or steps.kind != "transformer":
            raise TypeError("Pipeline: steps must be a loaded emllinear transformer")
        if model.n_features != steps.width:
            raise ValueError("Pipeline: the steps give %d features but the model takes %s" % (steps.width, model.n_features))
        self.steps = steps
        self.model = model
        self.z = array("f", bytes(4 * steps.width))

    def transform(self, x):
        return self.steps.transform(x, self.z)

    def predict(self, x):
        return self.model.predict(self.steps.transform(x, self.z))

    def predict_proba(self, x, out):
        return self.model.predict_proba(self.steps.transform(x, self.z), out)
