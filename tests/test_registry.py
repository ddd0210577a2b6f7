"""The table of supported estimators (mpyml.registry): exact classes, per-family options, clear refusals,
and the feature dtype chosen for the device ('auto')."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import (AdaBoostRegressor, BaggingClassifier, ExtraTreesClassifier,
                              RandomForestClassifier, RandomForestRegressor, StackingClassifier,
                              VotingClassifier)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

import mpyml
from mpyml import registry
from mpyml.formats import linear as linear_format


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


class LooksLikeAForest:
    """Not an estimator mpyml knows, though its estimators_ have a tree_."""

    def __init__(self, X, y):
        self.estimators_ = [DecisionTreeClassifier().fit(X, y)]
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.unique(y)


class MyForest(RandomForestClassifier):
    pass


UNSUPPORTED = {
    "SVC": lambda X, y: SVC().fit(X, y),
    "AdaBoostRegressor": lambda X, y: AdaBoostRegressor(n_estimators=2, random_state=0).fit(X, y),
    "StackingClassifier": lambda X, y: StackingClassifier([("a", DecisionTreeClassifier())]).fit(X, y),
    "VotingClassifier": lambda X, y: VotingClassifier([("a", DecisionTreeClassifier()), ("b", DecisionTreeClassifier())]).fit(X, y),
    "LooksLikeAForest": LooksLikeAForest,
    "MyForest": lambda X, y: MyForest(n_estimators=2).fit(X, y),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_estimators_are_refused_by_name(tmp_path, iris, name):
    estimator = UNSUPPORTED[name](*iris)
    for call in (lambda: mpyml.export(estimator, tmp_path / "m.csv"), lambda: mpyml.convert(estimator)):
        with pytest.raises(mpyml.ExportError) as error:
            call()
        message = str(error.value)
        assert message.startswith("%s is not a supported estimator" % name), message
        assert "supported: DecisionTreeClassifier," in message and "BaggingClassifier (of decision trees)" in message
        assert "AdaBoostRegressor" not in message.split("supported:")[1]
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("make", [LogisticRegression, Ridge, RandomForestClassifier, KNeighborsClassifier,
                                  lambda: make_pipeline(StandardScaler(), LogisticRegression())])
def test_unfitted_estimators_are_refused_clearly(tmp_path, make):
    """LogisticRegression() unfitted raised AttributeError: 'LogisticRegression' object has no attribute 'coef_'."""
    estimator = make()
    name = "StandardScaler" if hasattr(estimator, "steps") else type(estimator).__name__
    for call in (lambda: mpyml.export(estimator, tmp_path / "m.csv"), lambda: mpyml.convert(estimator)):
        with pytest.raises(mpyml.ExportError, match=r"^%s is not fitted: call fit\(\) before exporting it$" % name):
            call()


def test_subclass_names_its_supported_parent(tmp_path, iris):
    with pytest.raises(mpyml.ExportError, match="a subclass of RandomForestClassifier"):
        mpyml.export(MyForest(n_estimators=2).fit(*iris), tmp_path / "m.csv")


def test_a_listed_class_in_the_wrong_place_is_not_called_a_subclass(tmp_path, iris):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), MLPClassifier((3,), max_iter=5, random_state=0)).fit(*iris)
    with pytest.raises(mpyml.ExportError) as error:
        mpyml.export(pipe, tmp_path / "m.bin")
    message = str(error.value)
    assert "MLPClassifier is exported on its own, not as a final estimator" in message, message
    assert "subclass" not in message, message


def test_bagging_of_non_trees_and_tree_converter_of_other_ensembles(tmp_path, iris):
    from mpyml import trees

    with pytest.raises(mpyml.ExportError, match="BaggingClassifier of SVC is not supported"):
        mpyml.export(BaggingClassifier(SVC(), n_estimators=2).fit(*iris), tmp_path / "m.csv")
    # The forest converter itself refuses ensembles that combine trees otherwise.
    with pytest.raises(mpyml.ExportError, match="AdaBoostRegressor is not a supported estimator"):
        trees.forest_from_sklearn(AdaBoostRegressor(n_estimators=2).fit(*iris))
    with pytest.raises(mpyml.ExportError, match="BaggingClassifier is not a forest"):
        trees.forest_from_sklearn(BaggingClassifier(n_estimators=2).fit(*iris))


def test_the_table_lists_every_supported_class_once():
    names = [row.cls for row in registry.ROWS]  # by import path: xgboost.Booster and lightgbm.Booster differ
    assert len(names) == len(set(names))
    for row in registry.ROWS:
        assert row.family in registry.FAMILIES
        if row.cls.startswith("sklearn."):
            assert isinstance(row.resolve(), type)


@pytest.mark.parametrize("make, option", [
    (lambda X, y: RandomForestClassifier(2).fit(X, y), "novelty_percentile"),
    (lambda X, y: RandomForestClassifier(2).fit(X, y), "quantize"),
    (lambda X, y: KNeighborsClassifier().fit(X, y), "voting"),
    (lambda X, y: LogisticRegression().fit(X, y), "feature_dtype"),
    (lambda X, y: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), "voting"),
    (lambda X, y: make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X, y), "input_dtype"),
])
def test_options_a_family_does_not_take(tmp_path, iris, make, option):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = make(*iris)
    with pytest.raises(TypeError, match="got option %s that" % option):
        mpyml.export(estimator, tmp_path / "m.csv", **{option: "float32"})


@pytest.mark.parametrize("make", [
    lambda X, y: LogisticRegression(max_iter=5000).fit(X, y),
    lambda X, y: LinearRegression().fit(X, y[:, None] * 1.0 + X[:, :1]),
    lambda X, y: Ridge().fit(X, y * 1.0),
])
def test_bare_linear_model_is_a_one_step_pipeline(tmp_path, iris, make):
    X, y = iris
    estimator = make(X, y)
    stored = mpyml.export(estimator, tmp_path / "m.csv")
    assert [s.kind for s in stored.steps] == ["matrix"]
    assert linear_format.load(tmp_path / "m.csv").n_values == stored.n_values
    X32 = X.astype(np.float32)
    if stored.kind == "classifier":
        assert (stored.classes[stored.predict(X32)] == estimator.predict(X32)).all()
    else:
        expected = np.ravel(estimator.predict(X32))
        np.testing.assert_allclose(stored.predict(X32), expected, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------- feature_dtype='auto'


def test_auto_is_int16_for_integer_features_and_float32_otherwise(tmp_path, iris):
    X, y = iris
    integer = RandomForestClassifier(5, random_state=0).fit(np.round(X * 10), y)
    assert registry.integer_thresholds(mpyml.convert(integer))
    assert mpyml.export(integer, tmp_path / "i.csv").dtype == "int16"
    floats = RandomForestClassifier(5, random_state=0).fit(X / 3, y)
    assert mpyml.export(floats, tmp_path / "f.csv").dtype == "float32"
    # Integer features beyond int16: float32.
    big = RandomForestRegressor(3, random_state=0).fit(np.round(X * 20000), y * 1.0)
    assert mpyml.export(big, tmp_path / "b.csv").dtype == "float32"
    # ExtraTrees draw thresholds at random: 'auto' cannot tell, float32 is the safe choice.
    extra = ExtraTreesClassifier(5, random_state=0).fit(np.round(X * 10), y)
    assert mpyml.export(extra, tmp_path / "e.csv").dtype == "float32"
    # No threshold at all (one class; features sklearn calls constant): nothing shows integers, float32, so
    # that verify and the mirror take any rows (int16 models refuse non-integer ones).
    for one_leaf in (DecisionTreeClassifier().fit(X, np.zeros(len(X))), RandomForestClassifier(3).fit(X * 1e-40, y)):
        assert not registry.integer_thresholds(mpyml.convert(one_leaf))
        stored = mpyml.export(one_leaf, tmp_path / "c.csv")
        assert stored.dtype == "float32"
        np.testing.assert_array_equal(stored.predict(X / 3), one_leaf.predict(X / 3))


def test_explicit_int16_on_float_features_warns(tmp_path, iris):
    X, y = iris
    floats = RandomForestClassifier(5, random_state=0).fit(X / 3, y)
    with pytest.warns(mpyml.PrecisionWarning, match="needs|integer features") as record:
        assert mpyml.export(floats, tmp_path / "f.csv", feature_dtype="int16").dtype == "int16"
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mpyml.export(RandomForestClassifier(5, random_state=0).fit(np.round(X * 10), y), tmp_path / "i.csv",
                     feature_dtype="int16")
        mpyml.export(floats, tmp_path / "f32.csv", feature_dtype="float32")


def test_auto_for_pipelines_and_neighbors(tmp_path):
    X, y = load_wine(return_X_y=True)
    Xi = np.round(X * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mpyml.PrecisionWarning)
        assert mpyml.export(make_pipeline(StandardScaler(), RandomForestClassifier(5, random_state=0)).fit(Xi, y),
                            tmp_path / "p.csv").dtype == "int16"
        assert mpyml.export(make_pipeline(StandardScaler(), RandomForestClassifier(5, random_state=0)).fit(X, y),
                            tmp_path / "p.csv").dtype == "float32"
        # Integer features up to 16383 through scalers that centre them near 0: still recognised.
        from sklearn.preprocessing import MinMaxScaler, RobustScaler

        from mpyml.demo import int16_scaled

        Xs = int16_scaled(X, X)[0]
        for fit in (Xs, Xs.astype(np.float32)):
            pipe = make_pipeline(StandardScaler(), MinMaxScaler(), RobustScaler(),
                                 RandomForestClassifier(10, random_state=0)).fit(fit, y)
            assert mpyml.export(pipe, tmp_path / "p.csv").dtype == "int16"
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(5, random_state=0)).fit(X, y)
    with pytest.warns(mpyml.PrecisionWarning, match="integer features"):
        assert mpyml.export(pipe, tmp_path / "p.csv", feature_dtype="int16", input_dtype="float64").dtype == "int16"
    assert mpyml.export(KNeighborsClassifier().fit(Xi, y), tmp_path / "k.csv").dtype == "int16"
    assert mpyml.export(KNeighborsClassifier().fit(X, y), tmp_path / "k.csv").dtype == "float32"
    with pytest.raises(mpyml.ExportError, match="feature_dtype must be one of"):
        mpyml.export(KNeighborsClassifier().fit(X, y), tmp_path / "k.csv", feature_dtype="int8")


def test_novelty_percentile_reaches_pipelines_ending_in_nearest_neighbors(tmp_path):
    """Issue 14: make_pipeline(StandardScaler(), NearestNeighbors()) with novelty_percentile=99 wrote 'threshold,none'."""
    X, _ = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NearestNeighbors()).fit(X)
    stored = mpyml.export(pipe, tmp_path / "nn.csv", novelty_percentile=99)
    assert stored.model.threshold is not None
    text = (tmp_path / "nn.csv").read_text()
    assert "threshold,none" not in text and "\nthreshold," in text
    stored = mpyml.export(pipe, tmp_path / "none.csv", novelty_percentile=None)
    assert stored.model.threshold is None and "threshold,none" in (tmp_path / "none.csv").read_text()


def test_readme_lists_the_table():
    """The README's "Supported estimators" table names every class of the registry, in its family's row."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Supported estimators", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].split("(")[0].strip(): line for line in section.splitlines() if line.startswith("| ")}
    for row in registry.ROWS:
        assert row.label in rows[row.family], (row.label, row.family)
    for family, options in registry.FAMILIES.items():
        for option in options.options:
            assert "`%s`" % option in rows[family], (family, option)
