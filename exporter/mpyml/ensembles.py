"""Ensembles of trees that are not forests, converted into the forest IR (mpyml.trees.Forest).

BaggingClassifier / BaggingRegressor of decision trees: each tree was trained on
the columns ``estimators_features_[i]`` (repeats allowed with bootstrap_features)
and, for classifiers, on the classes its bootstrap sample held
(``estimators_[i].classes_``, label-encoded indices into the ensemble's
``classes_``). The conversion maps each tree's feature indices through its
column subset and its class columns into the ensemble's columns. scikit-learn
then aggregates exactly as a forest does: predict_proba is the sum of the trees'
predict_proba divided by n_estimators, predict the argmax of it (classifiers);
predict is the mean of the trees' predictions (regressors).
"""

from __future__ import annotations

import numpy as np

from .errors import ExportError
from .trees import CLASSIFIER, REGRESSOR, Forest, Tree, _tree_from_sklearn


def _bagged_tree_classes(kind: str) -> tuple:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

    return (DecisionTreeClassifier, ExtraTreeClassifier) if kind == CLASSIFIER else (DecisionTreeRegressor, ExtraTreeRegressor)


def bagging_from_sklearn(estimator) -> Forest:
    """Converts a fitted BaggingClassifier or BaggingRegressor whose estimators are decision trees
    (DecisionTree* or ExtraTree*); ExportError for any other base estimator."""
    from sklearn.ensemble import BaggingClassifier, BaggingRegressor
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    name = type(estimator).__name__
    if type(estimator) is BaggingClassifier:
        kind = CLASSIFIER
    elif type(estimator) is BaggingRegressor:
        kind = REGRESSOR
    else:
        raise ExportError("%s is not a BaggingClassifier or BaggingRegressor" % name)
    allowed = _bagged_tree_classes(kind)
    n_features = int(estimator.n_features_in_)
    classes = np.asarray(estimator.classes_) if kind == CLASSIFIER else None
    n_classes = len(classes) if kind == CLASSIFIER else 0
    trees = []
    for i, (tree_estimator, features) in enumerate(zip(estimator.estimators_, estimator.estimators_features_)):
        if type(tree_estimator) not in allowed:
            raise ExportError("%s of %s is not supported: the estimators must be %s"
                              % (name, type(tree_estimator).__name__, " or ".join(c.__name__ for c in allowed)))
        if getattr(tree_estimator, "n_outputs_", 1) != 1:
            raise ExportError("only single-output estimators are supported, got n_outputs_=%d" % tree_estimator.n_outputs_)
        features = np.asarray(features, dtype=np.int64)
        tree = _tree_from_sklearn(tree_estimator.tree_, kind)
        split = tree.left >= 0
        feature = tree.feature.copy()
        feature[split] = features[tree.feature[split]]
        value, proba = tree.value, tree.proba
        if kind == CLASSIFIER:
            # The tree's columns are its own classes_ (label-encoded indices into the ensemble's classes_).
            columns = np.asarray(tree_estimator.classes_).astype(np.int64)
            if columns.min(initial=0) < 0 or columns.max(initial=0) >= n_classes:
                raise ExportError("%s: estimator %d has classes %s outside 0..%d" % (name, i, columns, n_classes - 1))
            value, proba = np.zeros((len(tree.value), n_classes)), np.zeros((len(tree.proba), n_classes))
            value[:, columns], proba[:, columns] = tree.value, tree.proba
        trees.append(Tree(feature=feature, threshold=tree.threshold, left=tree.left, right=tree.right, value=value,
                          nan_left=tree.nan_left, proba=proba))
    feature_names = getattr(estimator, "feature_names_in_", None)
    return Forest(kind=kind, n_features=n_features, n_classes=n_classes, trees=trees, classes=classes,
                  feature_names=None if feature_names is None else np.asarray(feature_names))
