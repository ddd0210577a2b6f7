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
from mpyml import build, device, linear, pipeline
from mpyml.formats import linear as linear_format, records

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
    assert linear_format.load(path).n_values == stored.n_values
    values, pred, proba = device.predict_linear(path, X, stored)
    np.testing.assert_array_equal(values, stored.transform(X))  # the numpy mirror of the float32 arithmetic
    if pred is not None:
        np.testing.assert_array_equal(pred, stored.predict_index(X))
    if proba is not None:  # bit-identical, the mirror's expf and recipf included
        np.testing.assert_array_equal(proba.view(np.uint32), stored.predict_proba(X).view(np.uint32))
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


def test_refuses_steps_whose_float32_weights_overflow(tmp_path):
    """Features of magnitude 1e-40: 1 / scale_ is beyond float32. The file would hold infinity, which the device
    refuses ('step value is NaN or infinite'); the exporter says why instead, naming the step."""
    X, y = load_iris(return_X_y=True)
    for final in (LogisticRegression(), None):
        pipe = make_pipeline(StandardScaler(), *([final] if final is not None else [PCA(2)])).fit(X * 1e-40, y)
        with pytest.raises(mpyml.ExportError, match=r"step 'standardscaler.*': its float32 weights overflow"):
            mpyml.export(pipe, tmp_path / "model.csv")
        assert not (tmp_path / "model.csv").exists()


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
    return linear_format.dumps(linear.lower(pipeline.pipeline_from_sklearn(pipe)))


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


def body(text):
    """The records of a sealed file without its end record."""
    lines = text.splitlines()
    assert lines[-1].startswith("end,")
    return lines[:-1]


def replace_line(text, number, new):
    """The file with line `number` (1-based) replaced, sealed again so only the change is wrong."""
    lines = body(text)
    lines[number - 1] = new
    return records.seal("\n".join(lines) + "\n")


def test_bad_files(emllinear_x64, tmp_path):
    text = model_text(tmp_path)
    lines = body(text)
    affine, select, matrix = (lines.index(s) + 1 for s in ("step,affine,4,4", "step,select,4,3", "step,matrix,3,2"))
    assert lines[8:13] == ["classes,int,3", "label,0", "label,1", "label,2", "feature_names,str,0"]
    scales, shifts, indices = affine + 1, affine + 2, select + 1
    cases = [
        (replace_line(text, 1, "mpyml-linear,1"), "line 1: version 1 is no longer read by this emllinear (it reads version 2): export the model again"),
        (replace_line(text, 1, "mpyml-linear,3"), "line 1: this file's format version is not supported (this emllinear reads version 2)"),
        (replace_line(text, 2, "kind,clusterer"), "line 2: unknown kind 'clusterer'"),
        (replace_line(text, scales, lines[scales - 1].replace(lines[scales - 1][:8], "7fc00000")), "line %d: step value is NaN or infinite" % scales),
        (replace_line(text, scales, lines[scales - 1].replace(lines[scales - 1][:8], "zz")), "line %d: expected 8 hex digits" % scales),
        (replace_line(text, scales, lines[scales - 1].replace(lines[scales - 1][:8], "-0000001")), "line %d: expected 8 hex digits" % scales),
        (replace_line(text, shifts, ",".join(lines[shifts - 1].split(",")[:3])), "line %d: the affine step's shifts needs 4 values, got 3" % shifts),
        (replace_line(text, indices, "0,1,7"), "line %d: select index not below the step's input width" % indices),
        (replace_line(text, indices, "0,1,18446744073709551616"), "line %d: a select index must be 0..65535, got 18446744073709551616" % indices),
        (replace_line(text, indices, "0,1,18446744073709551617"), "line %d: a select index must be 0..65535" % indices),
        (replace_line(text, indices, "0,1,-1"), "line %d: a select index must be 0..65535, got -1" % indices),
        (replace_line(text, indices, "0,1,+2"), "line %d: a select index: expected a decimal integer, got '+2'" % indices),
        (replace_line(text, matrix, "step,matrix,4,2"), "line %d: a step's input width differs from the previous step's output width" % matrix),
        (replace_line(text, matrix, "step,matrix,18446744073709551619,2"), "line %d: a step's n_in must be 1..65535" % matrix),
        (replace_line(text, select, "step,shuffle,4,3"), "line %d: expected 'step,<affine|select|matrix>,<n_in>,<n_out>'" % select),
        (replace_line(text, 7, "n_values,1073741823"), "line 7: the file is truncated or corrupt: file says 1073741823 step values (at least 2147483646 bytes), the file has"),
        (replace_line(text, 4, "n_features,18446744073709551620"), "line 4: n_features must be 1..65535"),
        (replace_line(text, 11, "label,x"), "line 11: int label: expected a decimal integer, got 'x'"),
        (records.seal("\n".join(lines[:-1]) + "\n"), "line %d: the file is truncated or corrupt: it ends after line %d, expected the matrix step's biases" % (len(lines), len(lines) - 1)),
        (records.seal("\n".join(lines) + "\nextra\n"), "unexpected line after the last step: 'extra'"),
        (replace_line(text, 5, "n_outputs,5"), "line 12: 3 classes, but n_outputs is 5"),
        (text[:-3], "line 28: the file is truncated or corrupt: expected 'end,<n_records>,<crc32>'"),
        (text[:300], "the file is truncated or corrupt: it ends inside line"),
        ("\n".join(lines) + "\n", "the file is truncated or corrupt: it ends after line %d without its end record" % len(lines)),
        (text.replace("label,1", "label,7"), "the file is truncated or corrupt: its CRC-32 is"),
    ]
    for bad, message in cases:
        out = load_error(tmp_path, bad)
        assert message in out and out.endswith("False"), (message, out)
        with pytest.raises(ValueError):  # the host reader refuses every file the device refuses
            linear_format.read(bad)
    out = load_error(tmp_path, text, max_values=10)
    assert "model needs %s values but emllinear.new() was given capacity for 10" % lines[6].split(",")[1] in out
    out = load_error(tmp_path, text, max_steps=2)
    assert "model file line 13: model needs 4 steps but emllinear.new() was given capacity for 2 (2 short)" in out
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
