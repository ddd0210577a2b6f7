"""mpyml: scikit-learn models exported for MicroPython native modules."""

from __future__ import annotations

__version__ = "0.1.0"

from .trees import ExportError


def convert(estimator):
    """The intermediate representation of a fitted estimator (see mpyml.trees.Forest)."""
    from . import neighbors, trees

    if _is_neighbors(estimator):
        return neighbors.neighbors_from_sklearn(estimator)
    return trees.forest_from_sklearn(estimator)


def _is_neighbors(estimator) -> bool:
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    return isinstance(estimator, (KNeighborsClassifier, NearestNeighbors))


def _is_net(model) -> bool:
    return type(model).__name__ in ("MLPClassifier", "MLPRegressor", "Sequential")


def export(estimator, path, feature_dtype: str = "int16", voting: str = "soft", *, novelty_percentile: float | None = 99.0,
           quantize: str | None = None, representative_data=None):
    """Writes a fitted scikit-learn estimator to a model file for the device.

    feature_dtype: 'int16' (the device predicts from array('h')) or 'float32' (array('f')).
    voting: classifiers only; 'soft' averages the trees' class probabilities exactly
    as scikit-learn's predict_proba, 'hard' takes the majority class (smaller file).
    Returns the stored model (mpyml.trees.StoredForest): its n_nodes, n_leaves,
    ram_bytes() and a numpy predict()/predict_proba() that mirror the device.

    KNeighborsClassifier and NearestNeighbors go to the mpyml-neighbors format
    (mpyml.neighbors.StoredNeighbors; voting does not apply): novelty_percentile
    sets the novelty threshold to that percentile of the training rows' scores
    (None: no threshold).

    MLPClassifier/MLPRegressor and Keras Sequential models go to the mpyml-nets
    format for emlcnn (mpyml.nets.StoredNet; feature_dtype and voting do not
    apply): quantize=None stores float32, quantize='int8' calibrates int8 scales
    on representative_data (typical input rows). stored.summary() reports the
    weights (flash) and arena (RAM) bytes.
    """
    if _is_net(estimator):
        from . import nets, netsfile

        stored = nets.lower(nets.convert(estimator), dtype=quantize or "float32", representative_data=representative_data)
        netsfile.save(stored, path)
        return stored
    if _is_neighbors(estimator):
        from . import neighbors, neighborsfile

        stored = neighbors.lower(convert(estimator), dtype=feature_dtype, novelty_percentile=novelty_percentile)
        neighborsfile.save(stored, path)
        return stored
    from . import trees, treesfile

    stored = trees.lower(convert(estimator), dtype=feature_dtype, voting=voting)
    treesfile.save(stored, path)
    return stored


__all__ = ["ExportError", "convert", "export", "__version__"]
