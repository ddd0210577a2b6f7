"""Bad model files and bad arguments raise clear exceptions on the unix port; nothing crashes."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

import mpyml
from mpyml.formats import records, trees as trees_format


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y)
    d = tmp_path_factory.mktemp("models")
    int16 = mpyml.export(rf, d / "int16.csv", feature_dtype="int16")
    float32 = mpyml.export(rf, d / "float32.csv", feature_dtype="float32")
    return {"int16": (d / "int16.csv", int16), "float32": (d / "float32.csv", float32), "x": X[0].astype(int).tolist()}


def lines_of(path):
    return path.read_text().splitlines()


def first_line(lines, prefix_section):
    """Index of the first record after a section line ('trees', 'nodes', 'leaves')."""
    return lines.index(prefix_section) + 1


def replace_line(index_of, new):
    def edit(lines):
        i = index_of(lines)
        return lines[:i] + [new(lines[i])] + lines[i + 1:]
    return edit


def set_header(key, value):
    return replace_line(lambda lines: next(i for i, l in enumerate(lines) if l.startswith(key + ",")),
                        lambda line: "%s,%s" % (key, value))


def set_node_field(field, value, offset=0):
    def new(line):
        parts = line.split(",")
        parts[field] = str(value)
        return ",".join(parts)
    return replace_line(lambda lines: first_line(lines, "nodes") + offset, new)


def unsealed(edit):
    """An edit about integrity: its file is written without an end record."""
    edit.sealed = False
    return edit


# (name, dtype of the base file, edit of its lines (without the end record), expected exception, words the
# message must contain). A file is sealed with a valid end record unless its edit is `unsealed`: then the
# loader meets the fault a case is about, not the end record.
FILE_CASES = [
    ("empty file", "int16", unsealed(lambda lines: []), "ValueError", ["line 0", "truncated or corrupt", "mpyml-trees"]),
    ("wrong version", "int16", set_header("mpyml-trees", 4), "ValueError", ["line 1", "version 4", "reads version 3"]),
    ("other format", "int16", lambda l: ["mpyml-neighbors,1"] + l[1:], "ValueError", ["line 1", "mpyml-trees", "mpyml-neighbors"]),
    ("wrong kind", "int16", set_header("kind", "clusterer"), "ValueError", ["line 4", "unknown model kind", "clusterer"]),
    ("wrong voting", "int16", set_header("voting", "mean"), "ValueError", ["line 4", "unknown model kind"]),
    ("wrong leaf values", "int16", set_header("leaf_values", "float64x"), "ValueError", ["line 4", "unknown model kind"]),
    ("wrong dtype", "int16", set_header("dtype", "int8"), "ValueError", ["line 5", "int8"]),
    ("zero features", "int16", set_header("n_features", 0), "ValueError", ["line 13", "n_features"]),
    ("no trees", "int16", set_header("n_trees", 0), "ValueError", ["line 13", "at least one tree"]),
    ("negative count", "int16", set_header("n_nodes", -3), "ValueError", ["line 13", "non-negative"]),
    ("huge count", "int16", set_header("n_nodes", 2**64 + 5), "ValueError", ["line 13", "too big"]),
    ("fewer classes than labels", "int16", set_header("n_classes", 9), "ValueError", ["label"]),
    ("truncated in nodes", "int16", unsealed(lambda l: l[: first_line(l, "nodes") + 5]), "ValueError",
     ["truncated or corrupt", "a node"]),
    ("truncated mid-line", "int16", unsealed(lambda l: l[: first_line(l, "nodes") + 5] + [l[first_line(l, "nodes") + 5][:3]]),
     "ValueError", ["needs 4 fields"]),
    ("truncated in leaves", "int16", unsealed(lambda l: l[:-2]), "ValueError", ["truncated or corrupt", "a leaf"]),
    ("fewer nodes than n_nodes", "int16", lambda l: l[: first_line(l, "nodes") + 5], "ValueError",
     ["truncated or corrupt", "expected a node"]),
    ("fewer leaves than n_leaves", "int16", lambda l: l[:-2], "ValueError", ["truncated or corrupt", "expected a leaf"]),
    ("garbage node", "int16", replace_line(lambda l: first_line(l, "nodes") + 2, lambda _: "hello"), "ValueError",
     ["needs 4 fields", "hello"]),
    ("non-number", "int16", set_node_field(1, "x7"), "ValueError", ["line", "x7"]),
    ("feature out of range", "int16", set_node_field(0, 64), "ValueError", ["feature index"]),
    ("child past the end", "int16", set_node_field(3, 5000), "ValueError", ["past the last node"]),
    ("child offset 0", "int16", set_node_field(2, 0), "ValueError", ["after its parent"]),
    ("leaf past the end", "int16", set_node_field(3, -999), "ValueError", ["leaf reference"]),
    ("int16 threshold too big", "int16", set_node_field(1, 40000), "ValueError", ["int16 threshold"]),
    ("root past the end", "int16", replace_line(lambda l: first_line(l, "trees"), lambda _: "100000"), "ValueError",
     ["past the last node"]),
    ("bad leaf class", "int16", replace_line(lambda l: first_line(l, "leaves"), lambda _: "12:3"), "ValueError", ["class"]),
    ("bad leaf pair", "int16", replace_line(lambda l: first_line(l, "leaves"), lambda _: "3-2"), "ValueError",
     ["line", "class:count"]),
    ("extra line", "int16", lambda l: l + ["1,2,3"], "ValueError", ["unexpected line"]),
    ("missing section", "int16", lambda l: [x for x in l if x != "leaves"], "ValueError", ["'leaves' section"]),
    ("NaN threshold", "float32", set_node_field(1, "7fc00000"), "ValueError", ["NaN"]),
    ("bad hex threshold", "float32", set_node_field(1, "3f80zz00"), "ValueError", ["hex"]),
    ("short hex threshold", "float32", set_node_field(1, "3f80"), "ValueError", ["hex"]),
    ("bad NaN direction", "float32", set_node_field(4, "x"), "ValueError", ["NaN direction"]),
    ("no NaN direction", "float32", replace_line(lambda l: first_line(l, "nodes"), lambda line: line[:-2]), "ValueError",
     ["needs 5 fields"]),
]


def run_bad_file(run_device, good, bad, x, typecode, capacity=(10, 2000, 1000)):
    return run_device(f"""
import emltrees, array
m = emltrees.new{capacity!r}
emltrees.load_model(m, {str(good)!r})
x = array.array({typecode!r}, {x!r})
try:
    emltrees.load_model(m, {str(bad)!r})
    print('NO ERROR')
except Exception as e:
    print(type(e).__name__)
    print(e)
print(m.loaded)
try:
    m.predict(x)
    print('predicted after failed load')
except RuntimeError as e:
    print('RuntimeError', e)
emltrees.load_model(m, {str(good)!r})
print(m.predict(x))
""").splitlines()


@pytest.mark.parametrize("name,dtype,edit,exc,words", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_model_file(run_device, models, tmp_path, name, dtype, edit, exc, words):
    good, stored = models[dtype]
    bad = tmp_path / "bad.csv"
    lines = edit(lines_of(good)[:-1])
    text = "\n".join(lines) + "\n" if lines else ""
    bad.write_text(records.seal(text) if getattr(edit, "sealed", True) else text)
    x = [float(v) for v in models["x"]] if dtype == "float32" else models["x"]
    out = run_bad_file(run_device, good, bad, x, "f" if dtype == "float32" else "h")
    assert out[0] == exc, out
    for word in words:
        assert word in out[1], (word, out[1])
    assert "line" in out[1]
    assert out[2] == "False", "a failed load leaves the model clearly unloaded"
    assert out[3].startswith("RuntimeError no model loaded")
    assert int(out[4]) == stored.predict_index(np.array([models["x"]]))[0], "the model loads again afterwards"


def load_error(run_device, model, capacity):
    return run_device(f"""
import emltrees
m = emltrees.new{capacity!r}
try:
    emltrees.load_model(m, {str(model)!r})
    print('NO ERROR')
except ValueError as e:
    print(e)
print(m.loaded)
""").splitlines()


def test_capacity_too_small(run_device, models):
    good, stored = models["int16"]
    n, nodes, leaves = stored.n_trees, stored.n_nodes, stored.n_leaves
    out = load_error(run_device, good, (n - 1, nodes, leaves))
    assert out == ["model file line 13: model needs %d trees but emltrees.new() was given capacity for %d (1 short)" % (n, n - 1),
                   "False"]
    out = load_error(run_device, good, (n, nodes - 7, leaves))
    assert "needs %d decision nodes" % nodes in out[0] and "(7 short)" in out[0]
    out = load_error(run_device, good, (n, nodes, leaves - 1))
    assert "needs %d leaves" % leaves in out[0] and "(1 short)" in out[0]
    assert load_error(run_device, good, (n, nodes, leaves))[-1] == "True"


BAD_CALLS = [
    ("m.predict(array.array('f', [0.0] * 64))", "TypeError", "x: expected array('h'), got typecode 'f'"),
    ("m.predict(array.array('h', [0] * 63))", "ValueError", "x: expected 64 features, got 63"),
    ("m.predict(array.array('h', [0] * 65))", "ValueError", "x: expected 64 features, got 65"),
    ("m.predict([0] * 64)", "TypeError", "x: expected array('h'), got list"),
    ("m.predict(None)", "TypeError", "x: expected array('h'), got NoneType"),
    ("m.predict(bytearray(128))", "TypeError", "x: expected array('h'), got bytearray"),
    ("m.predict_many(array.array('h', [0] * 128), bytearray(2))", "TypeError", "out: expected an array, got bytearray"),
    ("m.predict_proba(x, array.array('f', [0.0] * 9))", "ValueError", "out: expected 10 items, got 9"),
    ("m.predict_proba(x, array.array('d', [0.0] * 10))", "TypeError", "out: expected array('f'), got typecode 'd'"),
    ("m.predict_many(array.array('h', [0] * 130), array.array('H', [0] * 2))", "ValueError",
     "X: expected a multiple of n_features=64 values, got 130"),
    ("m.predict_many(array.array('h', [0] * 128), array.array('H', [0] * 3))", "ValueError", "out: expected 2 items, got 3"),
    ("m.predict_many(array.array('h', [0] * 128), array.array('f', [0] * 2))", "TypeError", "cannot hold class indices"),
    ("m.predict_many(array.array('h'), array.array('H'))", "ValueError", "X: expected a multiple of n_features=64 values, got 0"),
    ("m.predict_proba_many(array.array('h', [0] * 128), array.array('f', [0] * 19))", "ValueError",
     "out: expected 20 items, got 19"),
    ("m.n_features = 3", "AttributeError", ""),
    ("emltrees.new(0, 10, 10)", "ValueError", "max_trees must be at least 1, got 0"),
    ("emltrees.new(1, -1, 10)", "ValueError", "max_nodes must be at least 0, got -1"),
    ("emltrees.new('a', 1, 1)", "TypeError", ""),
    ("emltrees.load_model(m, 42)", "TypeError", "expected a file opened for reading or a path, got int"),
    ("emltrees.load_model(None, 'x.csv')", "TypeError", "expected a model from emltrees.new(), got NoneType"),
    ("emltrees.load_model(m, '/nonexistent/model.csv')", "OSError", ""),
    ("emltrees.new(1, 1, 1).predict(x)", "RuntimeError", "no model loaded"),
    # MicroPython 1.29 checks self itself; the natmod checks too, for runtimes that do not.
    ("emltrees.Model.predict(None, x)", "TypeError", "NoneType"),
    ("emltrees.Model.predict_many(x, x, x)", "TypeError", "array"),
    ("emltrees.Model()", "TypeError", ""),
]


@pytest.mark.parametrize("call,exc,message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_call(run_device, models, call, exc, message):
    good, _ = models["int16"]
    out = run_device(f"""
import emltrees, array
m = emltrees.new(10, 2000, 1000)
emltrees.load_model(m, {str(good)!r})
x = array.array('h', [0] * 64)
try:
    {call}
    print('NO ERROR')
except Exception as e:
    print(type(e).__name__)
    print(e)
print(m.predict(x))
""").splitlines()
    assert out[0] == exc, out
    assert message in out[1], out
    int(out[-1])  # the model still predicts


def test_regressor_has_no_predict_proba(run_device, tmp_path):
    from sklearn.tree import DecisionTreeRegressor

    X = np.arange(40).reshape(20, 2)
    path = tmp_path / "r.csv"
    mpyml.export(DecisionTreeRegressor(max_depth=2).fit(X, X[:, 0] * 0.5), path)
    out = run_device(f"""
import emltrees, array
m = emltrees.new(1, 10, 10)
emltrees.load_model(m, {str(path)!r})
try:
    m.predict_proba(array.array('h', [1, 2]), array.array('f', [0.0]))
except TypeError as e:
    print(e)
""")
    assert "regressor" in out


def test_random_bytes_never_crash(run_device, models, tmp_path):
    good, _ = models["int16"]
    rng = np.random.default_rng(0)
    text = good.read_bytes()
    paths = []
    for i in range(30):
        data = bytearray(text)
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        p = tmp_path / ("fuzz%d.csv" % i)
        p.write_bytes(bytes(data[: int(rng.integers(0, len(data) + 1))]))
        paths.append(str(p))
    out = run_device(f"""
import emltrees
m = emltrees.new(10, 2000, 1000)
for p in {paths!r}:
    try:
        emltrees.load_model(m, p)
        print('loaded')
    except (ValueError, TypeError) as e:
        print('error')
print('done')
""").splitlines()
    assert out[-1] == "done" and len(out) == 31


def test_model_bigger_than_memory(run_device, tmp_path):
    """A header asking for more memory than the heap has: MemoryError, model left empty, interpreter fine."""
    path = tmp_path / "huge.csv"
    path.write_text("mpyml-trees,3\nkind,classifier\nvoting,soft\nleaf_values,counts\ndtype,float32\n"
                    "threshold_dtype,float32\nn_features,4\nn_classes,500\nn_trees,1\nn_nodes,16000000\n"
                    "n_leaves,32000\nn_steps,0\npairs,32768,65535,32000\n")
    out = run_device(f"""
import emltrees
m = emltrees.new(1, 20000000, 40000)
try:
    emltrees.load_model(m, {str(path)!r})
except MemoryError as e:
    print('MemoryError', e)
print(m.loaded)
""").splitlines()
    assert out[0].startswith("MemoryError not enough memory for the model") and out[1] == "False"


def small_model(tmp_path):
    """A small float32 forest file with class labels and feature names: every record kind once or more."""
    import pandas as pd

    X = pd.DataFrame({"temp, C": [0.0, 1.0, 2.0, 3.0, np.nan, 5.0], "rh": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    y = np.array(["dry", "wet", "wet", "dry", "wet", "dry"])
    forest = RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y)
    path = tmp_path / "small.csv"
    mpyml.export(forest, path, feature_dtype="float32")
    return path


def test_truncated_at_every_record_boundary(run_device, tmp_path):
    good = small_model(tmp_path)
    lines = good.read_text().splitlines(keepends=True)
    assert len(lines) > 20
    paths = []
    for n in range(len(lines)):
        path = tmp_path / ("cut%d.csv" % n)
        path.write_text("".join(lines[:n]))
        paths.append(str(path))
        with pytest.raises(mpyml.FormatError, match="truncated or corrupt"):
            trees_format.load(path)
    out = run_device(f"""
import emltrees
m = emltrees.new(4, 20, 20)
for p in {paths!r}:
    try:
        emltrees.load_model(m, p)
        print('LOADED', p)
    except ValueError as e:
        print(e)
    assert not m.loaded
emltrees.load_model(m, {str(good)!r})
print(m.loaded, m.classes)
""").splitlines()
    assert len(out) == len(lines) + 1, out
    for n, message in enumerate(out[:-1]):
        assert "truncated or corrupt" in message, (n, message)
    assert out[-1] == "True ['dry', 'wet']"


# Files written by mpyml before format version 3 (a tree; a tree behind a PCA step).
OLD_FILES = {
    "1": "mpyml-trees,1\nkind,classifier\nvoting,soft\ndtype,int16\nn_features,2\nn_classes,2\nn_trees,1\n"
         "n_nodes,1\nn_leaves,2\ntrees\n0\nnodes\n1,0,-2,-1\nleaves\n1:1\n0:1\n",
    "2": "mpyml-trees,2\nkind,classifier\nvoting,soft\ndtype,float32\nn_features,1\nn_classes,2\nn_trees,1\n"
         "n_nodes,1\nn_leaves,1\nsteps,2,1,3,2\nstep,matrix,2,1\n3f800000,00000000\nbf000000\ntrees\n0\nnodes\n"
         "0,00000000,-1,-1\nleaves\n0:1,1:1\n",
}


@pytest.mark.parametrize("version", sorted(OLD_FILES))
def test_old_versions_are_refused(run_device, tmp_path, version):
    path = tmp_path / ("v%s.csv" % version)
    path.write_text(OLD_FILES[version])
    with pytest.raises(mpyml.FormatError, match="format version %s is no longer read" % version):
        trees_format.load(path)
    out = run_device(f"""
import emltrees
m = emltrees.new(4, 20, 20)
try:
    emltrees.load_model(m, {str(path)!r})
except ValueError as e:
    print(e)
print(m.loaded)
""").splitlines()
    assert out == ["model file line 1: format version %s is no longer read by this emltrees (it reads version 3): "
                   "export the model again" % version, "False"]


# Integers past 32 bits or past the port's small ints (2**62 on x64): the dynruntime's mp_obj_get_int truncates a big
# int (2**64 + 5 would pass as 5) and a capacity kept in 32 bits would wrap (2**32 to 0); each is refused, its
# message showing the value given.
BIG_INT_CALLS = [
    ("emltrees.new(1, 2**32, 1)", "ValueError", "emltrees.new: max_nodes must be at most 2147483647, got 4294967296"),
    ("emltrees.new(2**64 + 5, 1, 1)", "ValueError", "emltrees.new: max_trees: 18446744073709551621 is out of range"),
    ("emltrees.new(1, 1, 2**64)", "ValueError", "emltrees.new: max_leaves: 18446744073709551616 is out of range"),
    ("emlcnn.new(2**64 + 100)", "ValueError", "emlcnn.new: arena_bytes: 18446744073709551716 is out of range"),
    ("emllinear.new(2**64 + 1, 10)", "ValueError", "emllinear.new: max_steps: 18446744073709551617 is out of range"),
    ("emllinear.new(4, 2**64 + 3)", "ValueError", "emllinear.new: max_values: 18446744073709551619 is out of range"),
    ("emlmixture.new(2**64 + 4, 3)", "ValueError", "emlmixture.new: max_features: 18446744073709551620 is out of range"),
    ("emlneighbors.new(2**64 + 10, 4, 3)", "ValueError", "emlneighbors.new: max_items: 18446744073709551626 is out"),
    ("emlneighbors.new(2**32, 4, 3)", "ValueError", "emlneighbors.new: max_items must be 1..16777216, got 4294967296"),
    ("nb.getitem(2**64, array.array('h', [0] * 4))", "IndexError", "item index 18446744073709551616 out of range"),
    ("nb.remove(2**64 + 1)", "IndexError", "item index 18446744073709551617 out of range"),
    ("setattr(nb, 'k', 2**64 + 2)", "ValueError", "k: 18446744073709551618 is out of range"),
    ("setattr(nb, 'k', 2**40)", "ValueError", "k must be 1..3 (the k given to emlneighbors.new()), got 1099511627776"),
    ("nb.additem(array.array('h', [0] * 4), 2**64)", "ValueError", "label: 18446744073709551616 is out of range"),
]


@pytest.mark.parametrize("call,exc,message", BIG_INT_CALLS, ids=[c[0] for c in BIG_INT_CALLS])
def test_big_integer_arguments_are_refused(call, exc, message):
    from mpyml import build, device

    for module in ("emltrees", "emlcnn", "emllinear", "emlmixture", "emlneighbors"):
        build.build(module, "x64")
    out = device.run(f"""
import array, emltrees, emlcnn, emllinear, emlmixture, emlneighbors
nb = emlneighbors.new(10, 4, 3)
nb.additem(array.array('h', [1, 2, 3, 4]), 0)
try:
    {call}
    print('NO ERROR')
except Exception as e:
    print(type(e).__name__)
    print(e)
""")
    lines = out.splitlines()
    assert lines[0] == exc and message in lines[1], out
