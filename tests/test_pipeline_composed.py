"""PCA/TruncatedSVD in front of trees (one mpyml-trees version 2 file, steps run by emltrees) and
steps in front of kNN composed by hand: an emllinear file of the steps feeding a bare emlneighbors
model through emllinear.Pipeline (export writes one mpyml-neighbors version 2 file instead:
tests/test_pipeline_neighbors.py)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

import mpyml
from mpyml import build, device, linear
from mpyml.formats import linear as linear_format, neighbors as neighbors_format, records, trees as trees_format

CLASSIFICATION = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}


@pytest.fixture(scope="module")
def natmods_x64():
    return [build.build(module, "x64") for module in ("emllinear", "emltrees", "emlneighbors")]


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def split(load):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    return X_train, X_test.astype(np.float32).astype(np.float64), y_train


TREES_SCRIPT = """
import array, emltrees
model = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(model, {path!r})
n_rows, n_features = {n_rows}, model.n_features
X = array.array('f', bytes(4 * n_rows * n_features))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
out = array.array('f', bytes(4 * n_rows))
if model.kind == 'classifier':
    many = array.array('H', bytes(2 * n_rows))
    model.predict_many(X, many)
else:
    many = array.array('f', bytes(4 * n_rows))
    model.predict_many(X, many)
x = array.array('f', bytes(4 * n_features))
for r in range(n_rows):
    for j in range(n_features):
        x[j] = X[r * n_features + j]
    out[r] = model.predict(x)
    if out[r] != many[r]:
        raise SystemExit('predict and predict_many differ at row %d' % r)
with open({out_path!r}, 'wb') as f:
    f.write(out)
"""

KNN_SCRIPT = """
import array, emllinear, emlneighbors
steps = emllinear.new(8, 100000)
emllinear.load_model(steps, {steps_path!r})
model = emlneighbors.new({n_items}, {n_model_features}, {k})
emlneighbors.load_model(model, {path!r})
pipe = emllinear.Pipeline(steps, model)
n_rows, n_features = {n_rows}, steps.n_features
X = array.array('f', bytes(4 * n_rows * n_features))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
x = array.array('f', bytes(4 * n_features))
out = array.array('f', bytes(4 * n_rows))
for r in range(n_rows):
    for j in range(n_features):
        x[j] = X[r * n_features + j]
    out[r] = pipe.predict(x)
with open({out_path!r}, 'wb') as f:
    f.write(out)
"""


def run_composed(path, stored, X, tmp_path):
    x_path, out_path = tmp_path / "x.bin", tmp_path / "out.bin"
    x_path.write_bytes(np.asarray(X, dtype="<f4").tobytes())
    common = dict(path=str(path), n_rows=len(X), x_path=str(x_path), out_path=str(out_path))
    if hasattr(stored.model, "n_trees"):
        m = stored.model
        device.run(TREES_SCRIPT.format(n_trees=m.n_trees, n_nodes=max(m.n_nodes, 1), n_leaves=m.n_leaves, **common))
    else:
        m = stored.model
        steps_path = tmp_path / "steps.csv"
        linear_format.save(stored.steps, steps_path)
        common["path"] = str(tmp_path / "bare.csv")
        neighbors_format.save(m, common["path"])
        device.run(KNN_SCRIPT.format(steps_path=str(steps_path), n_items=m.n_items,
                                     n_model_features=m.n_features, k=m.k, **common))
    return np.frombuffer(out_path.read_bytes(), dtype="<f4")


@pytest.mark.parametrize("dataset", list(CLASSIFICATION))
def test_pca_then_forest(natmods_x64, tmp_path, dataset):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset])
    pipe = make_pipeline(StandardScaler(), PCA(min(8, X_train.shape[1] - 1)),
                         RandomForestClassifier(n_estimators=10, random_state=0)).fit(X_train, y_train)
    path = tmp_path / "model.csv"
    stored = mpyml.export(pipe, path)
    assert isinstance(stored, linear.StoredPipeline)
    pred = run_composed(path, stored, X_test, tmp_path).astype(np.int64)
    np.testing.assert_array_equal(pred, stored.predict(X_test))  # the numpy mirror
    expected = np.searchsorted(pipe.classes_, pipe.predict(X_test))
    n_agree = int((pred == expected).sum())
    print("%s StandardScaler+PCA+RandomForest: %d/%d test rows agree with scikit-learn" % (dataset, n_agree, len(X_test)))
    assert n_agree >= 0.995 * len(X_test)


def test_svd_then_forest_regressor(natmods_x64, tmp_path):
    X_train, X_test, y_train = split(load_diabetes)
    pipe = make_pipeline(MaxAbsScaler(), TruncatedSVD(6, random_state=0),
                         RandomForestRegressor(n_estimators=10, random_state=0)).fit(X_train, y_train)
    path = tmp_path / "model.csv"
    stored = mpyml.export(pipe, path)
    pred = run_composed(path, stored, X_test, tmp_path)
    expected = pipe.predict(X_test)
    agree = np.abs(pred - expected) <= 1e-5 * np.abs(expected).max()
    print("diabetes MaxAbsScaler+TruncatedSVD+RandomForestRegressor: %d/%d test rows within 1e-5" % (agree.sum(), len(X_test)))
    assert agree.mean() >= 0.995


@pytest.mark.parametrize("dataset", ["iris", "wine", "breast_cancer"])
def test_scaler_then_knn(natmods_x64, tmp_path, dataset):
    X_train, X_test, y_train = split(CLASSIFICATION[dataset])
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier(5)).fit(X_train, y_train)
    path = tmp_path / "model.csv"
    stored = mpyml.export(pipe, path)
    pred = run_composed(path, stored, X_test, tmp_path).astype(np.int64)
    expected = np.searchsorted(pipe.classes_, pipe.predict(X_test))
    n_agree = int((pred == expected).sum())
    print("%s StandardScaler+KNeighborsClassifier: %d/%d test rows agree with scikit-learn" % (dataset, n_agree, len(X_test)))
    assert n_agree >= 0.995 * len(X_test)


DEVICE_API_SCRIPT = """
import array, gc, emltrees
model = emltrees.new(100, 100000, 100000)
emltrees.load_model(model, {path!r})
print(model.n_features, model.n_steps, model.typecode)
x = array.array('f', [1.0] * model.n_features)
X = array.array('f', [1.0] * (3 * model.n_features))
proba = array.array('f', [0.0] * model.n_classes)
many = array.array('H', [0] * 3)
probas = array.array('f', [0.0] * (3 * model.n_classes))
calls = (('predict', lambda: model.predict(x)), ('predict_proba', lambda: model.predict_proba(x, proba)),
         ('predict_many', lambda: model.predict_many(X, many)),
         ('predict_proba_many', lambda: model.predict_proba_many(X, probas)))
for measured in (False, True):
    for name, call in calls:
        call()
        gc.collect()
        before = gc.mem_alloc()
        for _ in range(100):
            call()
        if measured:
            print(name, gc.mem_alloc() - before)
for name, call in (('short x', lambda: model.predict(array.array('f', [1.0] * 8))),
                   ('int16 x', lambda: model.predict(array.array('h', [1] * 64)))):
    try:
        call()
        print(name, 'ok')
    except Exception as e:
        print(name, type(e).__name__, e)
"""


def test_steps_in_the_trees_file_allocate_nothing_and_check_input(natmods_x64, tmp_path):
    X_train, X_test, y_train = split(load_digits)
    pipe = make_pipeline(StandardScaler(), PCA(8), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X_train, y_train)
    path = tmp_path / "model.csv"
    stored = mpyml.export(pipe, path)
    assert path.read_text().startswith("mpyml-trees,3\n")
    back = trees_format.load(path)
    np.testing.assert_array_equal(back.predict(X_test), stored.predict(X_test))
    out = device.run(DEVICE_API_SCRIPT.format(path=str(path))).splitlines()
    assert out == [
        "64 1 f",  # the scaler is folded into the PCA matrix
        "predict 0",
        "predict_proba 0",
        "predict_many 0",
        "predict_proba_many 0",
        "short x ValueError x: expected 64 features, got 8",
        "int16 x TypeError x: expected array('f'), got typecode 'h'",
    ]


BAD_SCRIPT = """
import emltrees
model = emltrees.new(100, 100000, 100000)
try:
    emltrees.load_model(model, {path!r})
    print('loaded')
except ValueError as e:
    print('ValueError:', e)
print(model.loaded)
"""


def test_bad_steps_sections(natmods_x64, tmp_path):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), PCA(2), RandomForestClassifier(n_estimators=2, random_state=0)).fit(X, y)
    path = tmp_path / "model.csv"
    mpyml.export(pipe, path)
    lines = path.read_text().splitlines()[:-1]  # without the end record: each edit is sealed again
    # Header: version, kind, voting, leaf_values, dtype, threshold_dtype, n_features, n_classes, n_trees,
    # n_nodes, n_leaves, n_steps, pairs (soft voting with counts); then the steps section.
    assert lines[0] == "mpyml-trees,3" and lines[13].startswith("steps,4,") and lines[14] == "step,matrix,4,2"

    def load_error(edit):
        edited = list(lines)
        edit(edited)
        (tmp_path / "bad.csv").write_text(records.seal("\n".join(edited) + "\n"))
        return device.run(BAD_SCRIPT.format(path=str(tmp_path / "bad.csv"))).strip()

    def set_line(index, text):
        return lambda l: l.__setitem__(index, text)

    def int16_forest(l):
        l[4], l[5] = "dtype,int16", "threshold_dtype,int16"

    cases = [
        (set_line(0, "mpyml-trees,4"), "line 1: format version 4 is not supported (this emltrees reads version 3)"),
        (set_line(13, "trees"), "line 14: 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>' needs 5 fields"),
        (set_line(14, "step,matrix,5,2"), "line 15: a step's input width differs from the previous step's output width"),
        (set_line(14, "step,matrix,4,3"), "line 15: more values than the step or the header's n_values hold"),
        (set_line(15, "7f800000," + lines[15].split(",", 1)[1]), "line 16: step value is NaN or infinite"),
        (int16_forest, "line 14: steps need a float32 forest"),
        (set_line(5, "threshold_dtype,int8"), "line 6: threshold_dtype must be int8 or int16 for int16 forests"),
        (lambda l: l.__setitem__(13, l[13].replace("steps,4,", "steps,5,")), "line 14: bad header"),  # 5 > max_width
    ]
    for edit, message in cases:
        out = load_error(edit)
        assert message in out and out.endswith("False"), (message, out)
    assert load_error(lambda l: None) == "loaded\nTrue"


def test_host_reader_rejects_unknown_versions(tmp_path):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), PCA(2), RandomForestClassifier(n_estimators=2, random_state=0)).fit(X, y)
    path = tmp_path / "model.csv"
    mpyml.export(pipe, path)
    body = path.read_text().splitlines(True)[:-1]
    text = records.seal("".join(body).replace("mpyml-trees,3", "mpyml-trees,4"))
    with pytest.raises(mpyml.FormatError, match="format version 4 is not supported"):
        trees_format.read(text.splitlines(True))
    with pytest.raises(mpyml.FormatError, match="format version 2 is no longer read"):
        trees_format.read("".join(body).replace("mpyml-trees,3", "mpyml-trees,2"))
