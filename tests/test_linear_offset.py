"""Features far from 0 for their spread (e.g. X + 1e5) in front of emllinear: the exporter centres them
on the device and warns (mpyml.PrecisionWarning) that float32 inputs of that magnitude lose digits;
a well-conditioned pipeline exports silently and agrees on every row (unix port, doubles and float32)."""

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC

import mpyml
from mpyml import build, device, linear, registry, verify
from mpyml.formats import linear as linear_format

OFFSET = 1e5


@pytest.fixture(scope="module", autouse=True)
def emllinear_x64():
    return build.build("emllinear", "x64")


def float32_runner(script, files):
    """verify's run(script, files) on the unix port built with float32 Python floats."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, local in files.items():
            shutil.copyfile(local, Path(tmp) / name)
        return device.run(script, cwd=tmp, float32=True)


def probe_data(offset):
    X, y = make_classification(n_samples=1400, n_features=8, random_state=0)
    X_train, X_test, y_train, _ = train_test_split(X + offset, y, test_size=1000, random_state=0)
    return X_train, X_test.astype(np.float32), y_train  # the device's rows: float32, also given to scikit-learn


def export_quiet(estimator, path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", mpyml.PrecisionWarning)
        return mpyml.export(estimator, path)


@pytest.mark.parametrize("make", [lambda: make_pipeline(StandardScaler(), LogisticRegression()),
                                  lambda: make_pipeline(MinMaxScaler(), LinearSVC(random_state=0))],
                         ids=["StandardScaler+LogisticRegression", "MinMaxScaler+LinearSVC"])
@pytest.mark.parametrize("run", [None, float32_runner], ids=["unix", "unix-float32"])
def test_offset_warns_and_device_centres_exactly(tmp_path, make, run):
    X_train, rows, y_train = probe_data(OFFSET)
    model = make().fit(X_train, y_train)
    with pytest.warns(mpyml.PrecisionWarning, match=r"features .* far from 0 for their spread .*offset \d{5,6}.*"
                                                    r"Subtract the offset before the features become float32"):
        report = verify.verify_file(model, rows, tmp_path / "model.csv", run=run)
    assert report.n_agree == report.n_rows == len(rows), report.summary()
    # The device subtracts the float32 offset first (exact): its decision values keep float32's digits
    # (the scaler folded into w.x + intercept loses about 5e-3 of the decision's scale here).
    scale = np.abs(model.decision_function(rows)).max()
    assert report.worst_error <= linear.FLOAT32_RTOL * scale, report.summary()
    stored = linear_format.load(tmp_path / "model.csv")
    assert stored.steps[0].kind == "affine" and np.all(stored.steps[0].a == 1)


def test_offset_regressor_warns_and_agrees(tmp_path):
    X, y = make_regression(n_samples=1400, n_features=6, noise=1.0, random_state=1)
    X_train, X_test, y_train, _ = train_test_split(X + OFFSET, y, test_size=1000, random_state=0)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X_train, y_train)
    with pytest.warns(mpyml.PrecisionWarning, match="far from 0"):
        report = verify.verify_file(model, X_test.astype(np.float32), tmp_path / "model.csv")
    assert report.n_agree == report.n_rows, report.summary()


def test_warning_names_the_offset_feature_only():
    X_train, _, y_train = probe_data(0.0)
    X_train = X_train.copy()
    X_train[:, 5] += OFFSET
    with pytest.warns(mpyml.PrecisionWarning, match=r"^feature 5 \(of 8\) is far from 0 for its spread"):
        mpyml.export(make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train), "/dev/null")


@pytest.mark.parametrize("run", [None, float32_runner], ids=["unix", "unix-float32"])
def test_after_subtracting_the_offset_no_warning_and_every_row_agrees(tmp_path, run):
    """The advice followed: the offset subtracted in float64 before the features become float32."""
    X_train, rows, y_train = probe_data(OFFSET)
    X_train, rows = X_train - OFFSET, (rows.astype(np.float64) - OFFSET).astype(np.float32)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
    export_quiet(model, tmp_path / "model.csv")
    report = verify.verify_file(model, rows, tmp_path / "model.csv", run=run)
    assert report.n_agree == report.n_rows == len(rows), report.summary()
    stored = linear_format.load(tmp_path / "model.csv")
    assert [step.kind for step in stored.steps] == ["matrix"]  # scaler folded, no centring step


def test_bound_of_ordinary_pipelines_is_far_below_the_tolerance():
    """The datasets of the parity tests: the offset's rounding stays below 1e-6 of the output's scale."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    for load in (load_iris, load_wine, load_breast_cancer, load_digits):
        X, y = load(return_X_y=True)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y)
        ratio, _ = linear.offset_rounding(registry.convert(model))
        assert ratio < 1e-6, (load.__name__, ratio)
