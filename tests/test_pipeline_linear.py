"""emllinear on the unix port: pipelines of scalers, selection, PCA/SVD and linear models against scikit-learn."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_selection import SelectKBest, VarianceThreshold
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier, SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC

import mpyml
from mpyml import build, device, linear, linearfile, pipeline

CLASSIFICATION = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
CLASSIFIERS = {
    "LogisticRegression": lambda: LogisticRegression(max_iter=5000),
    "LinearSVC": lambda: LinearSVC(random_state=0),
    "RidgeClassifier": RidgeClassifier,
    "SGDClassifier": lambda: SGDClassifier(random_state=0),
}
REGRESSORS = {"LinearRegression": LinearRegression, "Ridge": Ridge, "SGDRegressor": lambda: SGDRegressor(random_state=0)}
TRANSFORM_RTOL = 1e-5


@pytest.fixture(scope="module")
def emllinear_x64():
    return build.build("emllinear", "x64")


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def split(load):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    # The device sees float32 features: scikit-learn gets the same values.
    return X_train, X_test.astype(np.float32).astype(np.float64), y_train


def relative_error(got, expected):
    """|got - expected| relative to the largest |expected| of the row (outputs near 0 are sums of larger terms)."""
    scale = np.maximum(np.abs(expected).max(axis=1, keepdims=True), 1e-30)
    return float((np.abs(got - expected) / scale).max())


def decision_error(got, expected):
    """|got - expected| relative to the largest |decision value| of the split: a binary decision is one
    number per row, near 0 for rows close to the boundary, where a relative error means nothing."""
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def run(stored, X, tmp_path):
    path = tmp_path / "model.csv"
    assert linearfile.load(path).n_values == stored.n_values
    values, pred, proba = linearfile.run_on_device(path, X, stored)
    np.testing.assert_array_equal(values, stored.transform(X))  # the numpy mirror of the float32 arithmetic
    return values, pred, proba


@pytest.mark.parametrize("model", list(CLASSIFIERS))
@pytest.mark.parametrize("dataset", list(CLASSIFICATION))
def test_classifier_pipeline(emllinear_x64, tmp_path, dataset, model):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset])
    n_components = min(8, X_train.shape[1] - 1)
    pipe = make_pipeline(StandardScaler(), PCA(n_components, whiten=True), CLASSIFIERS[model]()).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv")
    values, pred, proba = run(stored, X_test, tmp_path)
    expected = np.searchsorted(pipe.classes_, pipe.predict(X_test))
    n_agree = int((pred == expected).sum())
    print("%s %s: %d/%d test rows agree with scikit-learn" % (dataset, model, n_agree, len(X_test)))
    assert n_agree >= 0.995 * len(X_test)
    decision = pipe.decision_function(X_test)
    assert decision_error(values, decision.reshape(len(X_test), -1)) <= TRANSFORM_RTOL
    if model == "LogisticRegression":
        assert np.abs(proba - pipe.predict_proba(X_test)).max() <= 1e-5


@pytest.mark.parametrize("model", list(REGRESSORS))
def test_regressor_pipeline_on_diabetes(emllinear_x64, tmp_path, model):
    X_train, X_test, y_train = split(load_diabetes)
    pipe = make_pipeline(RobustScaler(), SelectKBest(k=8, score_func=lambda X, y: np.abs(np.corrcoef(X.T, y)[-1, :-1])),
                         REGRESSORS[model]()).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv")
    values, _, _ = run(stored, X_test, tmp_path)
    expected = pipe.predict(X_test)
    agree = np.abs(values[:, 0] - expected) <= 1e-5 * np.abs(expected).max()
    print("diabetes %s: %d/%d test rows within 1e-5 of scikit-learn" % (model, agree.sum(), len(X_test)))
    assert agree.mean() >= 0.995


TRANSFORMERS = {
    "StandardScaler+PCA(whiten)": lambda: make_pipeline(StandardScaler(), PCA(8, whiten=True)),
    "MinMaxScaler+SelectKBest+PCA": lambda: make_pipeline(MinMaxScaler(), SelectKBest(k=10), PCA(5)),
    "MaxAbsScaler+TruncatedSVD": lambda: make_pipeline(MaxAbsScaler(), TruncatedSVD(6, random_state=0)),
    "VarianceThreshold+StandardScaler(with_mean=False)": lambda: make_pipeline(VarianceThreshold(0.5), StandardScaler(with_mean=False)),
}


@pytest.mark.parametrize("name", list(TRANSFORMERS))
@pytest.mark.parametrize("dataset", ["wine", "digits"])
def test_transformer_pipeline(emllinear_x64, tmp_path, dataset, name):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset])
    pipe = TRANSFORMERS[name]().fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv")
    assert stored.kind == "transformer"
    values, _, _ = run(stored, X_test, tmp_path)
    assert relative_error(values, pipe.transform(X_test)) <= TRANSFORM_RTOL


def test_binary_logistic_proba(emllinear_x64, tmp_path):
    X_train, X_test, y_train = split(load_breast_cancer)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=100, max_iter=10000)).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv")
    assert stored.proba == linear.PROBA_LOGISTIC and stored.steps[-1].n_out == 1
    _, pred, proba = run(stored, X_test, tmp_path)
    assert (pred == pipe.predict(X_test)).mean() >= 0.995
    assert np.abs(proba - pipe.predict_proba(X_test)).max() <= 1e-5


def test_bare_linear_model_exports_through_a_pipeline(tmp_path):
    X_train, X_test, y_train = split(load_iris)
    pipe = make_pipeline(LogisticRegression(max_iter=5000)).fit(X_train, y_train)
    stored = mpyml.export(pipe, tmp_path / "model.csv")
    assert [s.kind for s in stored.steps] == ["matrix"]


def test_clip_cannot_run_on_the_device(tmp_path):
    X_train, X_test, y_train = split(load_iris)
    pipe = make_pipeline(MinMaxScaler(clip=True), LogisticRegression()).fit(X_train, y_train)
    with pytest.raises(mpyml.ExportError, match=r"step 'minmaxscaler' \(MinMaxScaler with clip=True\)"):
        mpyml.export(pipe, tmp_path / "model.csv")


def test_refuses_nan_coefficients(tmp_path):
    X_train, X_test, y_train = split(load_iris)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
    pipe[-1].coef_[1, 2] = np.inf
    with pytest.raises(mpyml.ExportError, match=r"step 'logisticregression' \(LogisticRegression\): fitted coef_"):
        mpyml.export(pipe, tmp_path / "model.csv")


ALLOC_SCRIPT = """
import array, gc, emllinear
model = emllinear.new(8, 100000)
emllinear.load_model(model, {path!r})
x = array.array('f', [0.5] * model.n_features)
y = array.array('f', [0.0] * model.width)
proba = array.array('f', [0.0] * model.n_outputs)
calls = (('predict', lambda: model.predict(x)), ('predict_proba', lambda: model.predict_proba(x, proba)),
         ('transform', lambda: model.transform(x, y)))
for measured in (False, True):  # the first pass warms up the interpreter's own first-time allocations
    for name, call in calls:
        call()
        gc.collect()
        before = gc.mem_alloc()
        for _ in range(100):
            call()
        if measured:
            print(name, gc.mem_alloc() - before)
"""


def test_predict_allocates_nothing(emllinear_x64, tmp_path):
    X_train, X_test, y_train = split(load_digits)
    pipe = make_pipeline(StandardScaler(), PCA(8), LogisticRegression(max_iter=5000)).fit(X_train, y_train)
    mpyml.export(pipe, tmp_path / "model.csv")
    out = device.run(ALLOC_SCRIPT.format(path=str(tmp_path / "model.csv")))
    assert out.split() == ["predict", "0", "predict_proba", "0", "transform", "0"], out


def model_text(tmp_path):
    X_train, X_test, y_train = split(load_iris)
    pipe = make_pipeline(StandardScaler(), SelectKBest(k=3), PCA(2), LogisticRegression()).fit(X_train, y_train)
    return linearfile.dumps(linear.lower(pipeline.pipeline_from_sklearn(pipe)))


BAD_SCRIPT = """
import array, emllinear
model = emllinear.new({max_steps}, {max_values})
try:
    emllinear.load_model(model, {path!r})
    print('loaded')
except ValueError as e:
    print('ValueError:', e)
print(model.loaded)
"""


def load_error(tmp_path, text, max_steps=8, max_values=1000):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return device.run(BAD_SCRIPT.format(path=str(path), max_steps=max_steps, max_values=max_values)).strip()


def replace_line(text, number, new):
    lines = text.splitlines()
    lines[number - 1] = new
    return "\n".join(lines) + "\n"


def test_bad_files(emllinear_x64, tmp_path):
    text = model_text(tmp_path)
    lines = text.splitlines()
    assert lines[8] == "step,affine,4,4" and lines[11] == "step,select,4,3" and lines[13] == "step,matrix,3,2"
    cases = [
        (replace_line(text, 1, "mpyml-linear,2"), "line 1: this file's format version is not supported (this emllinear reads version 1)"),
        (replace_line(text, 2, "kind,clusterer"), "line 2: unknown kind 'clusterer'"),
        (replace_line(text, 10, lines[9].replace(lines[9][:8], "7fc00000")), "line 10: step value is NaN or infinite"),
        (replace_line(text, 10, lines[9].replace(lines[9][:8], "zz")), "line 10: expected 8 hex digits"),
        (replace_line(text, 11, ",".join(lines[10].split(",")[:3])), "line 11: the affine step's shifts needs 4 values, got 3"),
        (replace_line(text, 13, "0,1,7"), "line 13: select index not below the step's input width"),
        (replace_line(text, 14, "step,matrix,4,2"), "line 14: a step's input width differs from the previous step's output width"),
        (replace_line(text, 12, "step,shuffle,4,3"), "line 12: expected 'step,<affine|select|matrix>,<n_in>,<n_out>'"),
        ("\n".join(lines[:-1]) + "\n", "file ends here: expected the matrix step's biases"),
        (text + "extra\n", "unexpected line after the last step: 'extra'"),
        (replace_line(text, 5, "n_outputs,5"), "the last step's width does not fit the model kind"),
    ]
    for bad, message in cases:
        out = load_error(tmp_path, bad)
        assert message in out and out.endswith("False"), (message, out)
    out = load_error(tmp_path, text, max_values=10)
    assert "model needs %s values but emllinear.new() was given capacity for 10" % lines[6].split(",")[1] in out
    out = load_error(tmp_path, text, max_steps=2)
    assert "model file line 8: model needs 4 steps but emllinear.new() was given capacity for 2 (2 short)" in out
    assert "loaded\nTrue" == load_error(tmp_path, text)


CALL_SCRIPT = """
import array, emllinear
model = emllinear.new(8, 1000)
def attempt(name, call):
    try:
        call()
        print(name, 'ok')
    except Exception as e:
        print(name, type(e).__name__, e)
attempt('empty', lambda: model.predict(array.array('f', [0.0] * 4)))
emllinear.load_model(model, {path!r})
attempt('short', lambda: model.predict(array.array('f', [0.0] * 3)))
attempt('typecode', lambda: model.predict(array.array('h', [0] * 4)))
attempt('out', lambda: model.predict_proba(array.array('f', [0.0] * 4), array.array('f', [0.0] * 2)))
attempt('good', lambda: model.predict(array.array('f', [0.0] * 4)))
emllinear.load_model(model, {transformer!r})
attempt('transformer', lambda: model.predict(array.array('f', [0.0] * 4)))
"""


def test_bad_calls(emllinear_x64, tmp_path):
    (tmp_path / "m.csv").write_text(model_text(tmp_path))
    X, y = load_iris(return_X_y=True)
    mpyml.export(make_pipeline(StandardScaler(), PCA(2)).fit(X), tmp_path / "t.csv")
    out = device.run(CALL_SCRIPT.format(path=str(tmp_path / "m.csv"), transformer=str(tmp_path / "t.csv"))).splitlines()
    assert out == [
        "empty RuntimeError no model loaded: call emllinear.load_model(model, file) first (a failed load leaves the model empty)",
        "short ValueError x: expected 4 features, got 3",
        "typecode TypeError x: expected array('f'), got typecode 'h'",
        "out ValueError out: expected 3 items, got 2",
        "good ok",
        "transformer TypeError predict: the loaded model is a transformer; use transform(x, out)",
    ]
