"""Class labels and feature names as an estimator holds them: the label types every model file
stores (docs/formats.md, "Labels"), the feature names of a fitted estimator, and scikit-learn's check
of a DataFrame's columns against them at predict."""

from __future__ import annotations

import numpy as np

LABEL_TYPES = ("int", "str", "bool", "float")


def label_type(labels) -> str:
    """The label type of a classifier's classes_ (or feature names): 'int', 'str', 'bool' or 'float'.
    Raises ValueError for labels of mixed or other types."""
    values = list(np.asarray(labels, dtype=object).ravel())
    for name, kinds in (("bool", (bool, np.bool_)), ("int", (int, np.integer)),
                        ("float", (float, np.floating)), ("str", (str,))):
        if all(isinstance(v, kinds) for v in values) and not (name == "int" and any(isinstance(v, (bool, np.bool_)) for v in values)):
            return name
    raise ValueError("labels must all be ints, strs, bools or floats, got %s"
                     % sorted({type(v).__name__ for v in values}))


def feature_names_of(estimator):
    """An estimator's (or pipeline's) feature_names_in_ as a list of str, or None without them."""
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def check_columns(X, feature_names) -> None:
    """Refuses a DataFrame whose columns are not the feature names the model was fitted with, in
    their order (scikit-learn's check). Arrays without column names pass."""
    columns = getattr(X, "columns", None)
    if columns is None or feature_names is None:
        return
    columns = [str(c) for c in columns]
    if columns != list(feature_names):
        if sorted(columns) == sorted(feature_names):
            raise ValueError("X: the columns are in another order than at fit: expected %s, got %s"
                             % (list(feature_names)[:10], columns[:10]))
        raise ValueError("X: the feature names differ from those seen at fit: expected %s, got %s"
                         % (list(feature_names)[:10], columns[:10]))
