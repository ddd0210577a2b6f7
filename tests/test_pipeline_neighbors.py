"""Pipeline steps in front of KNeighborsClassifier in one mpyml-neighbors version 2 file:
emlneighbors runs the steps (float32) before predict, kneighbors, score and is_outlier, and
stores items in the steps' output space."""

import warnings

import numpy as np
import pytest
from neighbors_device import tie_free
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mpyml
from mpyml import build, device, linear
from mpyml.formats import linear as linear_format, neighbors as neighbors_format, records

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}


@pytest.fixture(scope="module")
def natmods_x64():
    return [build.build(module, "x64") for module in ("emlneighbors", "emllinear")]


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fitted(dataset):
    X, y = DATASETS[dataset](return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42)
    steps = [StandardScaler(), PCA(8)] if dataset == "digits" else [StandardScaler()]
    pipe = make_pipeline(*steps, KNeighborsClassifier(5, metric="euclidean")).fit(X_train, y_train)
    return pipe, X_train, y_train, X_test.astype(np.float32)


# One row at a time through predict, kneighbors, score and is_outlier; then the heap bytes that
# predict, kneighbors and is_outlier allocated over every row, net of the loop itself (an empty
# call). score is left out: the float it returns is a heap object on the unix port.
DEVICE_SCRIPT = """
import array, gc, emlneighbors
model = emlneighbors.new({n_items}, {n_features}, {k})
emlneighbors.load_model(model, {path!r})
print(model.n_features, model.n_input_features, model.n_steps, model.typecode)
model.threshold = 1.0
n_rows, n_in, k = {n_rows}, model.n_input_features, model.k
X = array.array('f', bytes(4 * n_rows * n_in))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
rows = [X[r * n_in:(r + 1) * n_in] for r in range(n_rows)]
pred = array.array('H', bytes(2 * n_rows))
dist = array.array('f', bytes(4 * n_rows * k))
index = array.array('I', bytes(4 * n_rows * k))
score = array.array('f', bytes(4 * n_rows))
d = array.array('f', bytes(4 * k))
i = array.array('I', bytes(4 * k))
for r in range(n_rows):
    x = rows[r]
    pred[r] = model.predict(x)
    model.kneighbors(x, d, i)
    dist[r * k:(r + 1) * k] = d
    index[r * k:(r + 1) * k] = i
    score[r] = model.score(x)
    if model.is_outlier(x) != (score[r] > 1.0):
        raise SystemExit('is_outlier differs from score at row %d' % r)
with open({out_path!r}, 'wb') as f:
    f.write(pred)
    f.write(dist)
    f.write(index)
    f.write(score)
def nothing(x):
    pass
def calls(x):
    model.predict(x)
    model.kneighbors(x, d, i)
    model.is_outlier(x)
for measured in (nothing, calls, nothing, calls):
    gc.collect()
    before = gc.mem_alloc()
    for x in rows:
        measured(x)
    print(gc.mem_alloc() - before)
"""


def run_on_device(path, stored, X, tmp_path):
    x_path, out_path = tmp_path / "x.bin", tmp_path / "out.bin"
    x_path.write_bytes(np.asarray(X, dtype="<f4").tobytes())
    model = stored.model
    out = device.run(DEVICE_SCRIPT.format(n_items=model.n_items, n_features=model.n_features, k=model.k, path=str(path),
                                          n_rows=len(X), x_path=str(x_path), out_path=str(out_path))).split("\n")
    raw = out_path.read_bytes()
    n, k = len(X), model.k
    result = {"header": out[0]}
    offset = 0
    for name, dtype, count in (("pred", "<u2", n), ("dist", "<f4", n * k), ("index", "<u4", n * k), ("score", "<f4", n)):
        size = np.dtype(dtype).itemsize * count
        result[name] = np.frombuffer(raw[offset:offset + size], dtype=dtype)
        offset += size
    baseline, allocated = int(out[3]), int(out[4])
    result["allocated"] = allocated - baseline
    return result


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_steps_then_knn_in_one_file(natmods_x64, tmp_path, dataset):
    pipe, X_train, y_train, X_test = fitted(dataset)
    path = tmp_path / "model.csv"
    stored = mpyml.export(pipe, path)
    assert isinstance(stored, linear.StoredPipeline)
    assert path.read_text().startswith("mpyml-neighbors,3\n")
    assert not (tmp_path / "model.steps.csv").exists()
    back = neighbors_format.load(path)
    np.testing.assert_array_equal(back.steps.transform(X_test).view(np.uint32), stored.steps.transform(X_test).view(np.uint32))
    np.testing.assert_array_equal(back.model.items, stored.model.items)

    out = run_on_device(path, stored, X_test, tmp_path)
    n_steps = len(stored.steps.steps)
    assert out["header"] == "%d %d %d f" % (stored.model.n_features, X_test.shape[1], n_steps)
    assert out["allocated"] == 0
    # bit-identical to the numpy mirror: steps in float32, then the float32 kNN
    Z = stored.steps.transform(X_test)
    np.testing.assert_array_equal(out["pred"], stored.predict_index(X_test))
    np.testing.assert_array_equal(stored.predict(X_test), pipe.classes_[out["pred"]])  # labels, as scikit-learn's
    mirror_dist, mirror_index = stored.model.kneighbors(Z)
    np.testing.assert_array_equal(out["dist"].reshape(len(X_test), -1).view(np.uint32), mirror_dist.view(np.uint32))
    np.testing.assert_array_equal(out["index"].reshape(len(X_test), -1), mirror_index)
    np.testing.assert_array_equal(out["score"].view(np.uint32), stored.model.score(Z).view(np.uint32))
    # scikit-learn, on every row whose neighbour set is clear of distance ties
    transform = pipe[:-1]
    clear, _ = tie_free(pipe[-1], transform.transform(X_train), y_train, transform.transform(X_test.astype(np.float64)))
    expected = np.searchsorted(pipe.classes_, pipe.predict(X_test.astype(np.float64)))
    n_agree = int((out["pred"][clear] == expected[clear]).sum())
    print("%s %s+KNeighborsClassifier: %d/%d tie-free test rows agree with scikit-learn (%d rows with ties skipped)"
          % (dataset, "+".join(type(s).__name__ for s in pipe[:-1]), n_agree, clear.sum(), (~clear).sum()))
    assert n_agree == clear.sum() and clear.mean() > 0.9


ITEMS_SCRIPT = """
import array, emlneighbors
model = emlneighbors.new({n_items}, {n_features}, {k})
emlneighbors.load_model(model, {path!r})
emlneighbors.save_model(model, {saved!r})
again = emlneighbors.new({n_items}, {n_features}, {k})
emlneighbors.load_model(again, {saved!r})
x = array.array('f', {raw})
z = array.array('f', bytes(4 * model.n_features))
print(again.predict(x) == model.predict(x), again.n_steps, again.n_items)
index = model.additem(x, 2)
print(model.getitem(index, z), list(z) == list(array.array('f', {transformed})))
model.setitem(0, x, 1)
print(model.getitem(0, z), list(z) == list(array.array('f', {transformed})))
for name, call in (('short x', lambda: model.predict(array.array('f', [1.0] * 3))),
                   ('int16 x', lambda: model.predict(array.array('h', [1] * model.n_input_features))),
                   ('raw getitem', lambda: model.getitem(0, array.array('f', [0.0] * model.n_input_features))),
                   ('short additem', lambda: model.additem(z, 0))):
    try:
        call()
        print(name, 'ok')
    except Exception as e:
        print(name, type(e).__name__, e)
model.clear()
print(model.n_steps, model.n_input_features)
"""


def test_save_model_round_trip_and_items_with_steps(natmods_x64, tmp_path):
    pipe, _, _, X_test = fitted("digits")
    path, saved = tmp_path / "model.csv", tmp_path / "saved.csv"
    stored = mpyml.export(pipe, path)
    raw = [float(v) for v in X_test[0]]
    transformed = [float(v) for v in stored.steps.transform(X_test[:1])[0]]
    out = device.run(ITEMS_SCRIPT.format(n_items=stored.model.n_items + 1, n_features=8, k=5, path=str(path),
                                         saved=str(saved), raw=raw, transformed=transformed)).splitlines()
    assert saved.read_text() == path.read_text()  # the steps are written back bit for bit
    assert out == [
        "True 1 %d" % stored.model.n_items,
        "2 True",  # additem takes raw features and stores them transformed; getitem returns the stored item
        "1 True",
        "short x ValueError x: expected 64 features, got 3",
        "int16 x TypeError x: expected array('f'), got typecode 'h'",
        "raw getitem ValueError out: expected 8 items, got 64",
        "short additem ValueError x: expected 64 features, got 8",
        "0 8",  # clear() empties the model: no steps, rows are items again
    ]


BAD_SCRIPT = """
import emlneighbors
model = emlneighbors.new(200, {n_features}, 5)
try:
    emlneighbors.load_model(model, {path!r})
    print('loaded')
except ValueError as e:
    print('ValueError:', e)
print(model.n_items, model.n_steps)
"""


def test_bad_steps_sections(natmods_x64, tmp_path):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), PCA(2), KNeighborsClassifier(5)).fit(X, y)
    path = tmp_path / "model.csv"
    mpyml.export(pipe, path)
    lines = path.read_text().splitlines()[:-1]  # without the end record: each case is sealed again
    steps = lines.index("steps,4,1,10,4")
    assert lines[0] == "mpyml-neighbors,3" and lines[steps + 1] == "step,matrix,4,2" and lines[steps + 5] == "items"
    row = steps + 2

    def load_error(edit, n_features=2):
        edited = list(lines)
        edit(edited)
        (tmp_path / "bad.csv").write_text(records.seal("\n".join(edited) + "\n"))
        return device.run(BAD_SCRIPT.format(n_features=n_features, path=str(tmp_path / "bad.csv"))).strip()

    def set_line(index, text):
        return lambda l: l.__setitem__(index, text)

    cases = [
        (set_line(0, "mpyml-neighbors,2"), "line 1: version 2 is no longer read by this emlneighbors (it reads version 3): export the model again"),
        (set_line(steps, "steps,4,1,10"), "line %d: expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'" % (steps + 1)),
        (set_line(steps + 1, "step,matrix,5,2"), "line %d: a step's input width differs from the previous step's output width" % (steps + 2)),
        (set_line(steps + 1, "step,matrix,4,3"), "line %d: more values than the step or the header's n_values hold" % (steps + 2)),
        (set_line(row, "7fc00000," + lines[row].split(",", 1)[1]), "line %d: step value is NaN or infinite" % (row + 1)),
        (set_line(row, lines[row] + ",00000000"), "line %d: matrix row 0 needs 4 values, got 5" % (row + 1)),
        (set_line(row, lines[row].replace(lines[row][:8], "-0000001")), "line %d: expected 8 hex digits" % (row + 1)),
        (set_line(2, "dtype,int16"), "line %d: steps need float32 items and come once, before the items" % (steps + 1)),
        (set_line(steps, "steps,5,1,10,4"), "line %d: bad header" % (steps + 1)),  # 5 inputs > max_width 4
        (set_line(steps, "steps,4,2,10,4"), "line %d: a 'step,<kind>,<n_in>,<n_out>' line needs 4 fields, got 1: 'items'" % (steps + 6)),
        (set_line(steps, "steps,4,1,11,4"), "fewer steps or values than the header says"),
        (set_line(steps, "steps,4,1,1073741823,4"), "line %d: the file is truncated or corrupt: file says 1073741823 step values" % (steps + 1)),
        (set_line(steps, "steps,4,18446744073709551617,10,4"), "line %d: n_steps must be 1..255" % (steps + 1)),
        (set_line(steps + 1, "step,matrix,18446744073709551620,2"), "line %d: a step's n_in must be 1..65535" % (steps + 2)),
    ]
    for edit, message in cases:
        out = load_error(edit)
        assert message in out and out.endswith("0 0"), (message, out)
    # the steps' output must be the items' width
    assert "the file's items have 2 features but this model was made for 3" in load_error(lambda l: None, 3)
    assert load_error(lambda l: None) == "loaded\n%d 1" % len(X)


def test_host_reader_rejects_unknown_versions(tmp_path):
    pipe, _, _, _ = fitted("iris")
    path = tmp_path / "model.csv"
    mpyml.export(pipe, path)
    lines = path.read_text().splitlines()[:-1]
    for version, message in (("4", "format version '4' is not supported"), ("2", "version 2 is no longer read")):
        text = records.seal("\n".join(["mpyml-neighbors," + version] + lines[1:]) + "\n")
        with pytest.raises(mpyml.FormatError, match=message):
            neighbors_format.read(text)


PIPELINE_SCRIPT = """
import array, emllinear, emlneighbors
steps = emllinear.new(8, 100000)
emllinear.load_model(steps, {steps_path!r})
bare = emlneighbors.new({n_items}, 8, 5)
emlneighbors.load_model(bare, {bare_path!r})
pipe = emllinear.Pipeline(steps, bare)
one = emlneighbors.new({n_items}, 8, 5)
emlneighbors.load_model(one, {path!r})
X = array.array('f', bytes(4 * {n_rows} * 64))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
x = array.array('f', bytes(4 * 64))
differ = 0
for r in range({n_rows}):
    for j in range(64):
        x[j] = X[r * 64 + j]
    differ += pipe.predict(x) != one.predict(x)
print(bare.n_steps, one.n_steps, differ)
"""


def test_one_file_matches_emllinear_pipeline(natmods_x64, tmp_path):
    pipe, _, _, X_test = fitted("digits")
    path, bare_path, steps_path, x_path = (tmp_path / name for name in ("model.csv", "bare.csv", "steps.csv", "x.bin"))
    stored = mpyml.export(pipe, path)
    neighbors_format.save(stored.model, bare_path)
    linear_format.save(stored.steps, steps_path)
    assert bare_path.read_text().startswith("mpyml-neighbors,3\n") and "\nsteps," not in bare_path.read_text()
    x_path.write_bytes(X_test.astype("<f4").tobytes())
    out = device.run(PIPELINE_SCRIPT.format(steps_path=str(steps_path), bare_path=str(bare_path), path=str(path),
                                            n_items=stored.model.n_items, x_path=str(x_path), n_rows=len(X_test)))
    assert out.split() == ["0", "1", "0"]
