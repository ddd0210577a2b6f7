"""Scalers and column selection folded into tree thresholds: predict identical to the scikit-learn Pipeline.

The reference is scikit-learn's pipeline.predict on the values the device sees
(float32 or int16 raw features, as float64).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import SelectFromModel, SelectKBest, SelectPercentile, VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mpyml
from mpyml import device, pipeline, trees
from mpyml.demo import int16_scaled

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
SCALERS = {
    "StandardScaler": StandardScaler,
    "StandardScaler(with_mean=False)": lambda: StandardScaler(with_mean=False),
    "StandardScaler(with_std=False)": lambda: StandardScaler(with_std=False),
    "MinMaxScaler": MinMaxScaler,
    "MinMaxScaler(-3,-1,clip)": lambda: MinMaxScaler(feature_range=(-3, -1), clip=True),
    "MaxAbsScaler": MaxAbsScaler,
    "RobustScaler": RobustScaler,
}


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant features in SelectKBest's F-test
        yield


def split(load, dtype):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    if dtype == "int16":
        X_train, X_test = int16_scaled(X_train, X_test)
    elif dtype == "float64":
        pass
    else:
        X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    return X_train.astype(np.float64), X_test, y_train


def sklearn_classes(pipe, X):
    return np.searchsorted(pipe.classes_, pipe.predict(np.asarray(X, dtype=np.float64)))


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("scaler", list(SCALERS))
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_folded_reference_matches_sklearn(dataset, scaler, dtype):
    X_train, X_test, y_train = split(DATASETS[dataset], dtype)
    k = min(8, X_train.shape[1] - 1)
    pipe = make_pipeline(SCALERS[scaler](), SelectKBest(k=k), MaxAbsScaler(),
                         RandomForestClassifier(n_estimators=8, random_state=0)).fit(X_train, y_train)
    ir = pipeline.pipeline_from_sklearn(pipe)
    stored = trees.lower(pipeline.fold_into_forest(ir, dtype), dtype=dtype)
    np.testing.assert_array_equal(stored.predict(X_test), sklearn_classes(pipe, X_test))
    np.testing.assert_allclose(stored.predict_proba(X_test), pipe.predict_proba(X_test.astype(np.float64)), atol=1e-6)


def boundary_rows(stored, X_base, rng):
    """Rows of X_base with one feature set exactly on a stored threshold, or one float32/int16 step either side."""
    nodes = np.flatnonzero(np.isfinite(stored.threshold.astype(np.float64)))
    nodes = rng.choice(nodes, size=min(len(nodes), 300), replace=False)
    rows = []
    for node in nodes:
        t = stored.threshold[node]
        if stored.dtype == "float32":
            values = [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(-np.inf))]
        else:
            values = [v for v in (t, t + 1, t - 1) if -32768 <= v <= 32767]
        for v in values:
            row = X_base[rng.integers(len(X_base))].copy()
            row[stored.feature[node]] = v
            rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_device_predict_identical_on_test_split_and_boundaries(emltrees_x64, tmp_path, dataset, dtype):
    X_train, X_test, y_train = split(DATASETS[dataset], dtype)
    pipe = make_pipeline(StandardScaler(), VarianceThreshold(0.0), RobustScaler(), MinMaxScaler(),
                         ExtraTreesClassifier(n_estimators=10, random_state=0)).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv", feature_dtype=dtype)
    rng = np.random.default_rng(0)
    X = np.concatenate([X_test.astype(np.float64), boundary_rows(stored, X_test.astype(np.float64), rng)])
    X = X.astype(np.float32 if dtype == "float32" else np.int16)
    pred, proba = device.predict_trees(tmp_path / "model.csv", X, stored)
    expected = sklearn_classes(pipe, X)
    n_agree = int((pred == expected).sum())
    # Also against scikit-learn on the original float64 test rows (before the float32 cast the device needs).
    X_original = split(DATASETS[dataset], "float64")[1]
    n_original = int((pred[:len(X_test)] == sklearn_classes(pipe, X_original)).sum()) if dtype == "float32" else None
    print("%s %s: %d/%d rows (test split + boundary rows) identical to the scikit-learn pipeline%s"
          % (dataset, dtype, n_agree, len(X),
             "" if n_original is None else "; %d/%d test rows identical on the original float64 rows" % (n_original, len(X_test))))
    assert n_agree == len(X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X.astype(np.float64)), atol=1e-6)


def test_regressor_on_diabetes(emltrees_x64, tmp_path):
    X_train, X_test, y_train = split(load_diabetes, "float32")
    pipe = make_pipeline(RobustScaler(), SelectPercentile(percentile=60, score_func=lambda X, y: np.abs(np.corrcoef(X.T, y)[-1, :-1])),
                         StandardScaler(), RandomForestRegressor(n_estimators=10, random_state=0)).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv", feature_dtype="float32")
    rng = np.random.default_rng(1)
    X = np.concatenate([X_test, boundary_rows(stored, X_test, rng)]).astype(np.float32)
    pred, _ = device.predict_trees(tmp_path / "model.csv", X, stored)
    expected = pipe.predict(X.astype(np.float64))
    np.testing.assert_array_equal(pred, stored.predict(X))
    np.testing.assert_allclose(pred, expected, rtol=1e-5)


def test_select_from_model_and_decision_tree(tmp_path):
    X_train, X_test, y_train = split(load_breast_cancer, "float32")
    pipe = make_pipeline(StandardScaler(), SelectFromModel(LogisticRegression(max_iter=5000)),
                         DecisionTreeClassifier(random_state=0)).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv", feature_dtype="float32")
    assert isinstance(stored, trees.StoredForest)
    assert stored.n_features == X_train.shape[1]
    np.testing.assert_array_equal(stored.predict(X_test), sklearn_classes(pipe, X_test))


def test_decreasing_steps_swap_children():
    # scikit-learn's scalers only increase; a negative divisor exercises the swapped comparison.
    X_train, X_test, y_train = split(load_wine, "float32")
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X_train, y_train)
    ir = pipeline.pipeline_from_sklearn(pipe)
    scaler = ir.steps[0]
    flipped = pipeline.PerFeature("flipped", scaler.n_features, center=scaler.center, divisor=-scaler.divisor)
    ir.steps = [flipped]
    stored = trees.lower(pipeline.fold_into_forest(ir, "float32"), dtype="float32")
    X = np.concatenate([X_test, boundary_rows(stored, X_test, np.random.default_rng(2))]).astype(np.float32)
    transformed = flipped.transform(X.astype(np.float64))
    np.testing.assert_array_equal(stored.predict(X), sklearn_classes(pipe[-1:], transformed))


def test_every_raw_value_one_way():
    # A threshold beyond every transformed int16 value: the node disappears in the int16 file.
    ir = pipeline.PipelineIR(n_features=1, steps=[pipeline.PerFeature("s", 1, divisor=np.array([1e9]))])
    feature, raw, swap = pipeline.raw_thresholds(ir, np.array([0, 0]), np.array([1.0, -1.0]), "int16")
    assert raw[0] == 32767 and raw[1] == -np.inf and not swap.any()
    assert trees.int16_threshold(raw[0]) == "left" and trees.int16_threshold(raw[1]) == "right"


def fit(pipe, load=load_iris):
    X, y = load(return_X_y=True)
    return pipe.fit(X, y)


def test_refuses_unsupported_step_naming_it(tmp_path):
    pipe = fit(make_pipeline(FunctionTransformer(np.log1p), RandomForestClassifier(n_estimators=2)))
    with pytest.raises(mpyml.ExportError, match=r"step 'functiontransformer' \(FunctionTransformer\) is not supported"):
        mpyml.export(pipe, tmp_path / "m.csv")


def test_refuses_unsupported_final_estimator(tmp_path):
    from sklearn.svm import SVC

    pipe = fit(make_pipeline(StandardScaler(), SVC()))
    with pytest.raises(mpyml.ExportError, match=r"step 'svc' \(SVC\) is not a supported final estimator"):
        mpyml.export(pipe, tmp_path / "m.csv")


def test_refuses_steps_that_do_not_chain():
    pipe = fit(make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2)))
    pipe.steps[1][1].n_features_in_ = 3  # a final estimator fitted on other data
    with pytest.raises(mpyml.ExportError, match=r"takes 3 features but the step before it gives 4"):
        pipeline.pipeline_from_sklearn(pipe)


def test_refuses_nan_parameters():
    pipe = fit(make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2)))
    pipe.steps[0][1].scale_[2] = np.nan
    with pytest.raises(mpyml.ExportError, match=r"step 'standardscaler' \(StandardScaler\): fitted scale_ holds NaN"):
        pipeline.pipeline_from_sklearn(pipe)


def test_refuses_zero_scale():
    pipe = fit(make_pipeline(MaxAbsScaler(), RandomForestClassifier(n_estimators=2)))
    pipe.steps[0][1].scale_[1] = 0.0
    with pytest.raises(mpyml.ExportError, match=r"step 'maxabsscaler' \(MaxAbsScaler\): fitted scale_ holds 0"):
        pipeline.pipeline_from_sklearn(pipe)


def test_nested_pipelines_and_passthrough_are_flattened(tmp_path):
    from sklearn.pipeline import Pipeline

    X_train, X_test, y_train = split(load_wine, "float32")
    inner = make_pipeline(StandardScaler(), SelectKBest(k=5))
    pipe = Pipeline([("prep", inner), ("skip", "passthrough"), ("rf", RandomForestClassifier(n_estimators=4, random_state=0))])
    pipe.fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "m.csv", feature_dtype="float32")
    np.testing.assert_array_equal(stored.predict(X_test), sklearn_classes(pipe, X_test))


@pytest.mark.parametrize("feature_dtype", ["float32", "int16"])
@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
def test_issue_pipeline_on_float32_or_float64_input(emltrees_x64, tmp_path, input_dtype, feature_dtype):
    """Issue 11, fault 4: scikit-learn's scalers compute in the input's dtype (27 of 7188 rows differed on float32)."""
    X, y = load_digits(return_X_y=True)
    X_in = X.astype(input_dtype)
    path = tmp_path / "model.csv"
    rng = np.random.default_rng(0)
    n_rows = n_differ_other = 0
    for seed in range(4):
        pipe = make_pipeline(VarianceThreshold(), StandardScaler(), SelectKBest(k=30),
                             RandomForestClassifier(n_estimators=10, random_state=seed)).fit(X_in[::2], y[::2])
        stored = mpyml.export(pipe, path, feature_dtype=feature_dtype, input_dtype=input_dtype)
        assert stored.input_dtype == input_dtype and stored.dtype == feature_dtype
        rows = np.concatenate([X, boundary_rows(stored, X, rng)])
        device_rows = rows.astype(np.float32 if feature_dtype == "float32" else np.int16)
        pred, _ = device.predict_trees(path, device_rows, stored)
        expected = np.searchsorted(pipe.classes_, pipe.predict(device_rows.astype(input_dtype)))
        np.testing.assert_array_equal(pred, expected)
        n_rows += len(rows)
        other = "float64" if input_dtype == "float32" else "float32"
        n_differ_other += int((pred != np.searchsorted(pipe.classes_, pipe.predict(device_rows.astype(other)))).sum())
    print("%s input, %s features: %d/%d rows identical; %d differ from pipeline.predict on %s input"
          % (input_dtype, feature_dtype, n_rows, n_rows, n_differ_other, other))
    assert n_differ_other > 0  # the two input dtypes really decide differently here


def test_input_dtype_default_and_warning(tmp_path):
    X, y = load_digits(return_X_y=True)
    X32 = X.astype(np.float32)
    pipe = make_pipeline(VarianceThreshold(), StandardScaler(), SelectKBest(k=30),
                         RandomForestClassifier(n_estimators=10, random_state=0)).fit(X32[::2], y[::2])
    with pytest.warns(mpyml.PrecisionWarning, match="the file matches pipeline.predict on float64 input"):
        assert mpyml.export(pipe, tmp_path / "m.csv", feature_dtype="float32").input_dtype == "float64"
    # MinMaxScaler keeps float32 attributes when fitted on float32: the default follows.
    pipe = make_pipeline(MinMaxScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X32 / 7, y)
    assert mpyml.export(pipe, tmp_path / "m.csv", input_dtype=np.int16).input_dtype == "float64"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mpyml.PrecisionWarning)
        assert mpyml.export(pipe, tmp_path / "m.csv").input_dtype == "float32"
    with pytest.raises(mpyml.ExportError, match="input_dtype must be float32 or float64"):
        mpyml.export(pipe, tmp_path / "m.csv", input_dtype="float16")


@pytest.mark.parametrize("scaler", [StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler])
def test_auto_dtype_of_small_float_features_and_of_integer_ones(emltrees_x64, tmp_path, scaler):
    """feature_dtype='auto' on a folded pipeline: features of magnitude 1e-3 (sensor values in other units) are
    not integers although their raw thresholds lie within 0.008 of 0 or 0.5; integer features still are."""
    X, y = load_iris(return_X_y=True)
    small = make_pipeline(scaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X * 1e-3, y)
    stored = mpyml.export(small, tmp_path / "small.csv")
    assert stored.dtype == "float32"
    rows = (X * 1e-3).astype(np.float32)
    pred, _ = device.predict_trees(tmp_path / "small.csv", rows, stored)
    np.testing.assert_array_equal(pred, sklearn_classes(small, rows.astype(np.float64)))
    integer = make_pipeline(scaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(np.round(X * 10), y)
    assert mpyml.export(integer, tmp_path / "integer.csv").dtype == "int16"
