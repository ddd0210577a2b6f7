"""mpyml: scikit-learn models exported for MicroPython native modules."""

from __future__ import annotations

__version__ = "0.1.0"

from .trees import ExportError


def convert(estimator):
    """The intermediate representation of a fitted estimator (see mpyml.trees.Forest)."""
    from . import trees

    return trees.forest_from_sklearn(estimator)


def export(estimator, path, feature_dtype: str = "int16", voting: str = "soft"):
    """Writes a fitted scikit-learn estimator to a model file for the device.

    feature_dtype: 'int16' (the device predicts from array('h')) or 'float32' (array('f')).
    voting: classifiers only; 'soft' averages the trees' class probabilities exactly
    as scikit-learn's predict_proba, 'hard' takes the majority class (smaller file).
    Returns the stored model (mpyml.trees.StoredForest): its n_nodes, n_leaves,
    ram_bytes() and a numpy predict()/predict_proba() that mirror the device.
    """
    from . import trees, treesfile

    stored = trees.lower(convert(estimator), dtype=feature_dtype, voting=voting)
    treesfile.save(stored, path)
    return stored


__all__ = ["ExportError", "convert", "export", "__version__"]
