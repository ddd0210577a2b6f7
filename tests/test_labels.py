"""Class labels and feature names in mpyml-linear and mpyml-neighbors files (docs/formats.md,
"Labels"): the device's model.classes and model.feature_names, and the host mirrors' predict
returning labels like scikit-learn and refusing DataFrames whose columns are in another order."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mpyml
from mpyml import build, device
from mpyml.formats import linear as linear_format, neighbors as neighbors_format


@pytest.fixture(scope="module")
def natmods_x64():
    return [build.build(name, "x64") for name in ("emllinear", "emlneighbors")]


@pytest.fixture(scope="module")
def iris_frame():
    data = load_iris(as_frame=True)
    X = data.data.astype(np.float32).astype(np.float64)
    y = np.asarray(data.target_names)[data.target]  # 'setosa', 'versicolor', 'virginica'
    return X, y


SCRIPT = """
import array, {module}
model = {module}.new({capacity})
{module}.load_model(model, {path!r})
print(repr(model.classes))
print(repr(model.feature_names))
x = array.array('f', [0.0] * {n_features})
X = {rows!r}
print(repr([model.classes[model.predict(array.array('f', row))] for row in X]))
"""


def device_labels(module, capacity, path, rows):
    out = device.run(SCRIPT.format(module=module, capacity=capacity, path=str(path), n_features=len(rows[0]),
                                   rows=[list(map(float, r)) for r in rows])).splitlines()
    return [eval(line) for line in out]  # noqa: S307 (our own device's reprs)


def test_linear_classifier_labels(natmods_x64, tmp_path, iris_frame):
    X, y = iris_frame
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    path = tmp_path / "m.csv"
    stored = mpyml.export(pipe, path)
    np.testing.assert_array_equal(stored.predict(X), pipe.predict(X))  # labels, as scikit-learn
    back = linear_format.load(path)
    assert list(back.classes) == list(pipe.classes_) and back.feature_names == list(X.columns)
    classes, names, predicted = device_labels("emllinear", "8, 1000", path, X.to_numpy()[::10])
    assert classes == ["setosa", "versicolor", "virginica"] and names == list(X.columns)
    assert predicted == list(pipe.predict(X.iloc[::10]))
    with pytest.raises(ValueError, match="columns are in another order"):
        stored.predict(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="feature names differ"):
        stored.predict(X.rename(columns={X.columns[0]: "other"}))
    np.testing.assert_array_equal(stored.predict(X.to_numpy()), pipe.predict(X))  # arrays have no names to check


@pytest.mark.parametrize("labels", [[False, True], [-3, 10], [1.0, 2.0], ["a,b #1", "é%"]])
def test_label_types_round_trip(natmods_x64, tmp_path, labels):
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.1]])
    y = np.array([labels[0], labels[1], labels[0], labels[1]], dtype=object if isinstance(labels[0], str) else None)
    clf = make_pipeline(LogisticRegression()).fit(X, y)
    path = tmp_path / "m.csv"
    mpyml.export(clf, path)
    classes, names, predicted = device_labels("emllinear", "8, 1000", path, X)
    assert classes == list(clf.classes_) and [type(c) for c in classes] == [type(v) for v in labels]
    assert names is None
    assert predicted == list(clf.predict(X))
    assert list(linear_format.load(path).classes) == list(clf.classes_)


def test_regressor_and_transformer_have_no_classes(natmods_x64, tmp_path, iris_frame):
    X, y = iris_frame
    mpyml.export(make_pipeline(StandardScaler(), Ridge()).fit(X.iloc[:, :3], X.iloc[:, 3]), tmp_path / "r.csv")
    out = device.run("import emllinear\nm = emllinear.new(8, 100)\nemllinear.load_model(m, %r)\nprint(m.classes, m.feature_names)"
                     % str(tmp_path / "r.csv")).strip()
    assert out == "None ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)']"


NEIGHBORS_SCRIPT = """
import array, emlneighbors
model = emlneighbors.new({n_items}, 4, 5)
emlneighbors.load_model(model, {path!r})
print(repr(model.classes))
print(repr(model.feature_names))
emlneighbors.save_model(model, {saved!r})
again = emlneighbors.new({n_items}, 4, 5)
emlneighbors.load_model(again, {saved!r})
print(repr(again.classes))
X = {rows!r}
print(repr([again.classes[again.predict(array.array('{typecode}', row))] for row in X]))
nn = emlneighbors.new({n_items}, 4, 5)
emlneighbors.load_model(nn, {nn_path!r})
print(repr(nn.classes))
learned = emlneighbors.new(4, 4, 1)
learned.additem(array.array('h', [0, 0, 0, 0]), 1)
learned.additem(array.array('h', [9, 9, 9, 9]), 0)
print(repr(learned.classes))
emlneighbors.save_model(learned, {learned_path!r})
emlneighbors.load_model(learned, {learned_path!r})
print(repr(learned.classes))
"""


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_neighbors_labels(natmods_x64, tmp_path, iris_frame, dtype):
    X, y = iris_frame
    X = (X * 10).round()
    knn = KNeighborsClassifier(5).fit(X, y)
    path, nn_path, saved, learned = (tmp_path / n for n in ("m.csv", "nn.csv", "saved.csv", "learned.csv"))
    stored = mpyml.export(knn, path, feature_dtype=dtype)
    mpyml.export(NearestNeighbors(n_neighbors=5).fit(X), nn_path, feature_dtype=dtype)
    np.testing.assert_array_equal(stored.predict(X), knn.predict(X))
    with pytest.raises(ValueError, match="columns are in another order"):
        stored.predict(X[X.columns[::-1]])
    rows = X.to_numpy()[::15].astype(int).tolist()
    out = device.run(NEIGHBORS_SCRIPT.format(n_items=len(X), path=str(path), saved=str(saved), rows=rows,
                                             typecode="h" if dtype == "int16" else "f", nn_path=str(nn_path),
                                             learned_path=str(learned))).splitlines()
    out = [eval(line) for line in out]  # noqa: S307
    assert out[0] == out[2] == list(knn.classes_) and out[1] == list(X.columns)
    assert out[3] == list(knn.predict(X.iloc[::15]))
    assert out[4] is None  # NearestNeighbors: not a classifier
    assert out[5:] == [None, [0, 1]]  # learned on the device: class indices are the labels
    back = neighbors_format.load(saved)  # the device's file reads on the host: labels, names and all
    assert list(back.classes) == list(knn.classes_) and back.feature_names == list(X.columns)
    np.testing.assert_array_equal(back.predict(X), knn.predict(X))
