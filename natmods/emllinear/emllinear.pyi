"""emllinear: float32 pipeline steps (scalers, column selection, PCA/SVD) and linear models, in C.

Typing stub for editors; the module itself is mpy/<arch>_6.3/emllinear.mpy.
Model files (format mpyml-linear, docs/formats.md) are written on the PC by
``mpyml.export(pipeline, path)``.
"""

from array import array
from typing import Literal, Optional, TextIO, Union

class Model:
    """A step chain made by :func:`new`; empty until :func:`load_model` succeeds."""

    max_steps: int
    max_values: int
    loaded: bool
    # None while no model is loaded:
    kind: Optional[Literal["classifier", "regressor", "transformer"]]
    n_features: Optional[int]
    n_outputs: Optional[int]  # classes, 1 for regressors, the output width for transformers
    n_classes: Optional[int]  # 0 unless a classifier
    classes: Optional[list]  # the file's class labels (classifiers), else None
    feature_names: Optional[list]  # the file's feature names, or None
    n_steps: Optional[int]
    width: Optional[int]  # the last step's output width: what transform() writes

    def predict(self, x: array) -> Union[int, float]:
        """x: array('f') of n_features raw features. Class index (classifier) or value (regressor)."""
    def predict_proba(self, x: array, out: array) -> array:
        """Class probabilities into out (array('f') of n_classes); LogisticRegression only. Returns out."""
    def transform(self, x: array, out: array) -> array:
        """The steps' output into out (array('f') of width): a transformer's output, or a model's
        decision values. Returns out, so ``forest.predict(steps.transform(x, z))`` chains."""
    def unload(self) -> None:
        """Frees the steps; the capacity stays."""

def new(max_steps: int, max_values: int) -> Model:
    """An empty model for up to max_steps steps and max_values stored values (`mpyml inspect` says)."""

def load_model(model: Model, f: Union[TextIO, str]) -> None:
    """Reads an mpyml-linear file line by line; ValueError("model file line N: ...") on bad input."""
