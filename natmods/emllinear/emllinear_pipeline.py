# emllinear.Pipeline, linked into emllinear.mpy beside the C glue (which reads the model files).
from array import array


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
