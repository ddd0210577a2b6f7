"""Device predictions against scikit-learn on the whole test split of every bundled dataset."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mpyml import device, trees, verify
from mpyml.demo import int16_scaled

CLASSIFICATION = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
CLASSIFIERS = {
    "DecisionTreeClassifier": lambda: DecisionTreeClassifier(random_state=0),
    "RandomForestClassifier": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "ExtraTreesClassifier": lambda: ExtraTreesClassifier(n_estimators=15, random_state=0),
}
REGRESSORS = {
    "DecisionTreeRegressor": lambda: DecisionTreeRegressor(random_state=0),
    "RandomForestRegressor": lambda: RandomForestRegressor(n_estimators=15, random_state=0),
    "ExtraTreesRegressor": lambda: ExtraTreesRegressor(n_estimators=15, random_state=0),
}


def split(load, dtype):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    if dtype == "int16":
        X_train, X_test = int16_scaled(X_train, X_test)
    else:
        X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    return X_train, X_test, y_train


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", list(CLASSIFIERS))
@pytest.mark.parametrize("dataset", list(CLASSIFICATION))
def test_classifier_parity(emltrees_x64, tmp_path, dataset, model, dtype):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset], dtype)
    estimator = CLASSIFIERS[model]().fit(X_train, y_train)
    report = verify.verify_trees(estimator, X_test, tmp_path / "model.csv", feature_dtype=dtype, run=device.predict_trees)
    assert report.n_agree == report.n_rows, report.summary()
    assert report.max_proba_error <= 1e-6, report.summary()
    assert report.matches_reference, report.summary()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", list(REGRESSORS))
def test_regressor_parity(emltrees_x64, tmp_path, model, dtype):
    X_train, X_test, y_train = split(load_diabetes, dtype)
    estimator = REGRESSORS[model]().fit(X_train, y_train)
    report = verify.verify_trees(estimator, X_test, tmp_path / "model.csv", feature_dtype=dtype, run=device.predict_trees)
    assert report.n_agree == report.n_rows, report.summary()
    assert report.matches_reference, report.summary()


def majority_vote(forest_estimator, X):
    """Hard voting as emlearn does it: each tree's class, the most frequent wins, ties to the lowest index."""
    n_classes = len(forest_estimator.classes_)
    votes = np.zeros((len(X), n_classes), dtype=np.int64)
    for tree in forest_estimator.estimators_:
        votes[np.arange(len(X)), tree.predict(X).astype(np.int64)] += 1
    return np.argmax(votes, axis=1), votes / len(forest_estimator.estimators_)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("dataset", ["wine", "digits"])
def test_hard_voting_is_majority_of_trees(emltrees_x64, tmp_path, dataset, dtype):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset], dtype)
    estimator = RandomForestClassifier(n_estimators=9, max_depth=6, random_state=0).fit(X_train, y_train)
    stored = trees.lower(trees.forest_from_sklearn(estimator), dtype=dtype, voting="hard")
    soft = trees.lower(trees.forest_from_sklearn(estimator), dtype=dtype, voting="soft")
    assert stored.n_leaves <= len(estimator.classes_) <= soft.n_leaves
    from mpyml.formats import trees as trees_format

    path = tmp_path / "hard.csv"
    hard_bytes, soft_bytes = trees_format.save(stored, path), trees_format.save(soft, tmp_path / "soft.csv")
    assert hard_bytes <= soft_bytes
    pred, proba = device.predict_trees(path, X_test, stored)
    expected, expected_proba = majority_vote(estimator, stored.cast_features(X_test).astype(np.float32))
    np.testing.assert_array_equal(pred, expected)
    np.testing.assert_allclose(proba, expected_proba, atol=1e-6)
