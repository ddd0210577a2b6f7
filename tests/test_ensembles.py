"""Bagging of decision trees: device predictions against scikit-learn's BaggingClassifier/BaggingRegressor.

Each tree sees a column subset (estimators_features_, repeats allowed) and, for classifiers, the classes
its bootstrap sample held (estimators_[i].classes_); the device must aggregate as scikit-learn does.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import BaggingClassifier, BaggingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

import mpyml
from mpyml import device, verify
from mpyml.demo import int16_scaled

CLASSIFICATION = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
CLASSIFIERS = {
    "trees, bootstrap": lambda: BaggingClassifier(DecisionTreeClassifier(), n_estimators=12, random_state=0),
    "trees, half the rows and columns": lambda: BaggingClassifier(
        DecisionTreeClassifier(), n_estimators=12, max_samples=0.5, max_features=0.5, random_state=1),
    "extra trees, bootstrap_features, 10 rows": lambda: BaggingClassifier(
        ExtraTreeClassifier(), n_estimators=15, max_samples=10, max_features=0.7, bootstrap_features=True,
        random_state=2),
    "default estimator, no bootstrap, max_features=3": lambda: BaggingClassifier(
        n_estimators=9, bootstrap=False, max_features=3, random_state=3),
}
REGRESSORS = {
    "trees": lambda: BaggingRegressor(DecisionTreeRegressor(), n_estimators=10, max_features=0.5, random_state=0),
    "extra trees, bootstrap_features": lambda: BaggingRegressor(
        ExtraTreeRegressor(), n_estimators=10, max_samples=0.3, bootstrap_features=True, random_state=1),
}


def split(load, dtype):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42)
    if dtype == "int16":
        return (*int16_scaled(X_train, X_test), y_train)
    return X_train.astype(np.float32), X_test.astype(np.float32), y_train


def test_issue_column_subsets(emltrees_x64, tmp_path):
    """Issue 11, fault 1: the one tree was trained on column 1 only."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([0, 1, 0, 1])
    bag = BaggingClassifier(DecisionTreeClassifier(), n_estimators=1, max_features=1, bootstrap=False,
                            random_state=0).fit(X, y)
    assert list(bag.predict(X)) == [0, 1, 0, 1]
    stored = mpyml.export(bag, tmp_path / "bag.csv")
    pred, proba = device.predict_trees(tmp_path / "bag.csv", X, stored)
    assert list(pred) == [0, 1, 0, 1]
    np.testing.assert_array_equal(proba, bag.predict_proba(X).astype(np.float32))


def test_issue_regressor_max_features_2(emltrees_x64, tmp_path):
    """Issue 11, fault 1: BaggingRegressor of trees with max_features=2 on random data (94/100 rows differed)."""
    rng = np.random.default_rng(0)
    X = rng.random((100, 5)).astype(np.float32)
    y = X @ rng.random(5) + rng.normal(0, 0.1, 100)
    bag = BaggingRegressor(DecisionTreeRegressor(), max_features=2, random_state=0).fit(X, y)
    report = verify.verify_trees(bag, X, tmp_path / "bag.csv", feature_dtype="float32", run=device.predict_trees)
    assert report.n_agree == report.n_rows == 100 and report.ok, report.summary()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", list(CLASSIFIERS))
@pytest.mark.parametrize("dataset", list(CLASSIFICATION))
def test_classifier_parity(emltrees_x64, tmp_path, dataset, model, dtype):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset], dtype)
    bag = CLASSIFIERS[model]().fit(X_train, y_train)
    report = verify.verify_trees(bag, X_test, tmp_path / "bag.csv", feature_dtype=dtype, run=device.predict_trees)
    print(report.summary())
    assert report.n_agree == report.n_rows, report.summary()
    assert report.max_proba_error <= 1e-6, report.summary()
    assert report.matches_reference, report.summary()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("model", list(REGRESSORS))
def test_regressor_parity(emltrees_x64, tmp_path, model, dtype):
    X_train, X_test, y_train = split(load_diabetes, dtype)
    bag = REGRESSORS[model]().fit(X_train, y_train)
    report = verify.verify_trees(bag, X_test, tmp_path / "bag.csv", feature_dtype=dtype, run=device.predict_trees)
    print(report.summary())
    assert report.n_agree == report.n_rows and report.matches_reference, report.summary()


def test_trees_with_a_subset_of_classes_and_string_labels(emltrees_x64, tmp_path):
    """A tree whose sample missed classes has a subset classes_ (label-encoded indices); scikit-learn adds its
    predict_proba into those columns. Trees get bootstrap counts as sample_weight, so they see every class:
    here some trees are refitted on the rows of a few classes, as Bagging fits estimators without sample_weight."""
    X, y = load_digits(return_X_y=True)
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    bag = BaggingClassifier(DecisionTreeClassifier(), n_estimators=8, max_features=0.5, random_state=0).fit(X, labels)
    encoded = np.searchsorted(bag.classes_, labels)
    for i, kept in enumerate([[0, 3, 7], [1, 2], [2, 4, 5, 6, 8, 9]]):
        rows = np.isin(encoded, kept)
        bag.estimators_[i] = DecisionTreeClassifier(random_state=i).fit(X[rows][:, bag.estimators_features_[i]],
                                                                         encoded[rows])
    assert [list(e.classes_) for e in bag.estimators_[:3]] == [[0, 3, 7], [1, 2], [2, 4, 5, 6, 8, 9]]
    report = verify.verify_trees(bag, X, tmp_path / "bag.csv", feature_dtype="int16", run=device.predict_trees)
    assert report.ok and report.n_rows == 1797, report.summary()


@pytest.mark.parametrize("make, message", [
    (lambda: BaggingClassifier(LogisticRegression(), n_estimators=2), "BaggingClassifier of LogisticRegression"),
    (lambda: BaggingClassifier(BaggingClassifier(n_estimators=2), n_estimators=2), "BaggingClassifier of BaggingClassifier"),
])
def test_refuses_bagging_of_other_estimators(tmp_path, make, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(mpyml.ExportError, match=message):
        mpyml.export(make().fit(X, y), tmp_path / "bag.csv")


def test_verify_accepts_a_float32_mean_near_zero_of_large_tree_values(emltrees_x64, tmp_path):
    """A BaggingRegressor row whose trees say -0.58, 297.6, -171.4, 176.7, ...: mean 0.41264099, the device's
    float32 sum 0.41264534 (4.4e-6 off, a few float32 steps of 300). verify called that row a mismatch (its
    floor for values near 0 was 1e-8 of the largest value, below float32's step); it is within float32."""
    from sklearn.datasets import make_regression

    X, y = make_regression(300, 5, noise=3, random_state=2)
    model = BaggingRegressor(DecisionTreeRegressor(), n_estimators=8, max_samples=0.5, bootstrap_features=True,
                             random_state=0).fit(X[:200], y[:200])
    report = verify.verify_file(model, X, tmp_path / "m.csv", progress=False)
    assert report.ok and report.n_agree == 300, report.summary()
    pred, _ = device.predict_trees(tmp_path / "m.csv", X, mpyml.formats.trees.load(tmp_path / "m.csv"))
    assert abs(pred[221] - model.predict(X[221:222].astype(np.float32))[0]) > 4e-6  # the row in question
