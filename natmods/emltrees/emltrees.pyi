"""emltrees: decision trees and forests exported by mpyml, predicted in C.

Typing stub for editors; the module itself is mpy/<arch>_6.3/emltrees.mpy.
Model files are written on the PC by ``mpyml.export(estimator, path)``
(format: docs/formats.md).
"""

from array import array
from typing import Literal, Optional, TextIO, Union

class Model:
    """A forest made by :func:`new`; empty until :func:`load_model` succeeds."""

    max_trees: int
    max_nodes: int
    max_leaves: int
    loaded: bool
    # None while no model is loaded:
    kind: Optional[Literal["classifier", "regressor"]]
    voting: Optional[Literal["soft", "hard", "samme", "boost"]]  # None for forest regressors; "boost": gradient boosting, IsolationForest
    typecode: Optional[Literal["h", "f"]]  # array typecode of the features: int16 or float32
    n_features: Optional[int]  # raw features per row (the steps' input when the file has steps)
    n_steps: Optional[int]  # pipeline steps run before the forest (format version 2), else 0
    n_classes: Optional[int]  # 0 for regressors
    n_outputs: Optional[int]  # always 1
    n_trees: Optional[int]
    n_nodes: Optional[int]  # decision nodes
    n_leaves: Optional[int]  # distinct leaves (identical leaves are stored once)

    def predict(self, x: array) -> Union[int, float]:
        """One row of n_features values (array of `typecode`): class index or regression value.

        Allocates nothing for classifiers; a regressor's float result is a heap object on
        ports that box floats: use predict_many for allocation-free regression.
        """

    def predict_proba(self, x: array, out: array) -> array:
        """Fills out (array('f') of n_classes) with class probabilities; returns out. Classifiers only."""

    def predict_many(self, X: array, out: array) -> array:
        """Predicts every row of X (rows back to back, len(X) == len(out) * n_features) into out.

        out: an integer array ('b', 'B', 'h', 'H', 'i' or 'I', wide enough for n_classes - 1)
        of class indices for classifiers, array('f') for regressors. Returns out.
        """

    def predict_proba_many(self, X: array, out: array) -> array:
        """Class probabilities of every row of X into out (array('f') of n_rows * n_classes). Returns out."""

    def decision_function(self, X: array, out: array) -> array:
        """Boosted models and IsolationForest: per row of X, the library's raw scores rounded to float32
        (n_groups values: 1 for regressors and binary classifiers, n_classes for multiclass) into out
        (array('f')); IsolationForest: score_samples - offset_ (one value). Returns out."""

    def score_samples(self, X: array, out: array) -> array:
        """IsolationForest only: scikit-learn's score_samples of every row of X into out (array('f') of n_rows)."""

    def unload(self) -> None:
        """Frees the loaded forest; the capacity stays."""

def new(max_trees: int, max_nodes: int, max_leaves: int) -> Model:
    """An empty model that can load forests of up to these many trees, decision nodes and leaves.

    Memory for a forest is allocated when it is loaded, exactly as much as it needs.
    """

def load_model(model: Model, f: Union[TextIO, str]) -> None:
    """Reads a model file (an open file or a path) line by line into `model`.

    Raises ValueError naming the file line for a corrupt, truncated, wrong-version or
    too-big model; after a failed load the model is empty (``model.loaded`` is False).
    """
