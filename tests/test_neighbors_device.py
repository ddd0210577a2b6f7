"""emlneighbors on the unix port: learning on the device, removing and replacing items,
saving back to a file, the distance-tie rule, exact int16 distances over the full range,
the novelty threshold, and every bad input raising a clear exception."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

import mpyml
from mpyml import build, device
from mpyml.formats import neighbors as neighbors_format, records
from mpyml.neighbors import StoredNeighbors, training_scores


@pytest.fixture(scope="module")
def run():
    build.build("emlneighbors", "x64")
    return device.run


@pytest.fixture(scope="module")
def wine_files(tmp_path_factory):
    X, y = load_wine(return_X_y=True)
    tmp = tmp_path_factory.mktemp("nb")
    Xi = np.round(X * (1000.0 / np.abs(X).max(axis=0)))
    int_path, float_path = tmp / "wine_h.csv", tmp / "wine_f.csv"
    stored_int = mpyml.export(KNeighborsClassifier(3, weights="distance", metric="manhattan").fit(Xi, y), int_path)
    stored_float = mpyml.export(KNeighborsClassifier(4).fit(X.astype(np.float32), y), float_path, feature_dtype="float32")
    return (int_path, stored_int, Xi), (float_path, stored_float, X.astype(np.float32))


def test_learn_remove_replace_and_save_on_device(run, tmp_path):
    saved = tmp_path / "learned.csv"
    out = run(f"""
import emlneighbors, array
m = emlneighbors.new(6, 2, 3)
print(m.n_items, m.typecode, m.labeled, m.max_items, m.max_k, m.k)
for x, label in [((0, 0), 0), ((10, 0), 1), ((0, 10), 1), ((-10, 0), 2), ((100, 100), 3)]:
    m.additem(array.array('h', x), label)
print(m.n_items, m.typecode, m.labeled, m.n_classes, m.metric, m.weights)
q = array.array('h', [9, 1])
d = array.array('f', [0] * 3)
i = array.array('H', [0] * 3)
m.kneighbors(q, d, i)
print(list(i), m.predict(q))
m.remove(1)                                  # (10, 0) goes; later items move down
m.kneighbors(q, d, i)
print(m.n_items, list(i), m.predict(q))
m.setitem(3, array.array('h', [8, 1]), 2)    # (100, 100) becomes (8, 1) with class 2
row = array.array('h', [0, 0])
print(m.getitem(3, row), list(row))
m.kneighbors(q, d, i)
print(list(i), list(d)[:1], m.predict(q))
emlneighbors.save_model(m, {str(saved)!r})
m2 = emlneighbors.new(6, 2, 3)
emlneighbors.load_model(m2, {str(saved)!r})
print(m2.n_items, m2.n_classes, m2.predict(q))
m.clear()
print(m.n_items, m.typecode, m.labeled)
""").splitlines()
    assert out[0] == "0 None None 6 3 3"
    assert out[1] == "5 h True 4 euclidean uniform"
    assert out[2] == "[1, 0, 2] 1"            # nearest (10,0) class 1, (0,0) class 0, (0,10) class 1
    assert out[3] == "4 [0, 1, 2] 0"          # (0,0), (0,10), (-10,0): classes 0, 1, 2 tie -> 0
    assert out[4] == "2 [8, 1]"
    assert out[5] == "[3, 0, 1] [1.0] 0"      # (8,1) class 2, (0,0) class 0, (0,10) class 1: tie -> 0
    assert out[6] == "4 4 0"
    assert out[7] == "0 None None"
    stored = neighbors_format.load(saved)
    np.testing.assert_array_equal(stored.items, [[0, 0], [0, 10], [-10, 0], [8, 1]])
    np.testing.assert_array_equal(stored.labels, [0, 1, 2, 2])
    assert (stored.k, stored.n_classes, stored.threshold, stored.metric) == (3, 4, None, "euclidean")


@pytest.mark.parametrize("which", [0, 1])
def test_exported_file_loads_and_saves_back_identically(run, wine_files, tmp_path, which):
    path, stored, X = wine_files[which]
    saved = tmp_path / "saved.csv"
    run(f"""
import emlneighbors
m = emlneighbors.new({stored.n_items}, {stored.n_features}, {stored.k})
emlneighbors.load_model(m, {str(path)!r})
with open({str(saved)!r}, 'w') as f:
    emlneighbors.save_model(m, f)
""")
    assert saved.read_text() == path.read_text()
    again = neighbors_format.load(saved)
    assert again.threshold == stored.threshold and again.dtype == stored.dtype
    np.testing.assert_array_equal(again.predict(X[:20]), stored.predict(X[:20]))


def test_distance_tie_rule_lower_index_first(run, tmp_path):
    # Items 1, 2 and 4 are all at distance 5 from the query; item 0 at 3.
    items = [[3, 0], [0, 5], [5, 0], [9, 9], [-5, 0], [3, 4]]
    out = run(f"""
import emlneighbors, array
m = emlneighbors.new(8, 2, 4)
for x in {items!r}:
    m.additem(array.array('h', x))
q = array.array('h', [0, 0])
d = array.array('f', [0] * 4)
i = array.array('i', [0] * 4)
m.kneighbors(q, d, i)
print(list(i), list(d))
m.remove(1)
m.kneighbors(q, d, i)
print(list(i))
""").splitlines()
    assert out[0] == "[0, 1, 2, 4] [3.0, 5.0, 5.0, 5.0]"
    assert out[1] == "[0, 1, 3, 4]"  # items 2, 4, 5 (now 1, 3, 4) are the ones at 5
    stored = StoredNeighbors("neighbors", "int16", "euclidean", "uniform", 4, np.array(items), None, 0)
    assert stored.kneighbors([[0, 0]])[1].tolist() == [[0, 1, 2, 4]]


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_int16_full_range_distances_are_exact(run, tmp_path, metric):
    # 120 features at the ends of the int16 range: squared distances up to 120 * 65535^2 (> 2^38).
    # Items differ from each other by one unit in one feature, so only exact 64-bit
    # distances put them in the right order; float32 distances of neighbours may round equal.
    n = 120
    far = np.full(n, -32768)
    items = [far.copy() for _ in range(5)]
    items[1][7] = -32767          # 1 nearer than 0
    items[2][7] = -32766          # 2 nearer than 1
    items[3][:] = 32767           # the query itself
    items[4][:60] = 32767         # half way
    items = np.array(items)
    X = np.array([np.full(n, 32767), np.full(n, -32768), np.where(np.arange(n) % 2, 32767, -32768)])
    nn = NearestNeighbors(n_neighbors=5, metric=metric).fit(items.astype(float))
    path = tmp_path / "full.csv"
    stored = mpyml.export(nn, path, novelty_percentile=None)
    out = run(f"""
import emlneighbors, array
m = emlneighbors.new(5, {n}, 5)
emlneighbors.load_model(m, {str(path)!r})
X = array.array('h', {X.ravel().tolist()!r})
d = array.array('f', [0] * 5)
i = array.array('I', [0] * 5)
for r in range(3):
    m.kneighbors(X[r * {n}:(r + 1) * {n}], d, i)
    print(list(i), ' '.join('%08x' % b for b in array.array('I', bytearray(d))))
""").splitlines()
    exact = np.abs(X[:, None, :].astype(object) - items[None, :, :].astype(object))
    exact_key = {"euclidean": (exact * exact).sum(axis=2), "manhattan": exact.sum(axis=2),
                 "chebyshev": exact.max(axis=2)}[metric]
    mirror_dist, mirror_index = stored.kneighbors(X)
    for r, line in enumerate(out):
        index_text, dist_text = line.split("] ")
        index = [int(v) for v in index_text.strip("[").split(",")]
        want = sorted(range(5), key=lambda j: (exact_key[r][j], j))
        assert index == want == mirror_index[r].tolist(), (metric, r)
        assert dist_text.split() == ["%08x" % b for b in mirror_dist[r].view(np.uint32)]
    assert np.array_equal(stored.keys(X).astype(object), exact_key)


def test_novelty_threshold_and_score(run, wine_files):
    path, stored, X = wine_files[0]
    scores = training_scores(stored)
    assert stored.threshold == np.float32(np.percentile(scores, 99.0))
    assert 0 < np.mean(scores > stored.threshold) <= 0.02
    # The host's score is the k-th nearest distance (float64 check, independent of the mirror).
    from scipy.spatial.distance import cdist
    d = np.sort(cdist(X[:30], stored.items.astype(float), "cityblock"), axis=1)[:, stored.k - 1]
    np.testing.assert_allclose(stored.score(X[:30]), d, rtol=1e-6)
    far = np.full((1, stored.n_features), 1000)
    out = run(f"""
import emlneighbors, array
m = emlneighbors.new({stored.n_items}, {stored.n_features}, {stored.k})
emlneighbors.load_model(m, {str(path)!r})
print('%08x' % array.array('I', bytearray(array.array('f', [m.threshold])))[0])
print(m.is_outlier(array.array('h', {far.ravel().tolist()!r})), m.is_outlier(array.array('h', {[int(v) for v in X[0]]!r})))
m.threshold = 1e9
print(m.is_outlier(array.array('h', {far.ravel().tolist()!r})))
m.threshold = None
try:
    m.is_outlier(array.array('h', {far.ravel().tolist()!r}))
except RuntimeError as e:
    print('RuntimeError', e)
""").splitlines()
    assert out[0] == "%08x" % np.float32(stored.threshold).view(np.uint32)
    assert out[1] == "True False"
    assert out[2] == "False"
    assert out[3].startswith("RuntimeError is_outlier: no novelty threshold")


def _errors(run, setup: str, calls: list[str]) -> list[str]:
    script = "import emlneighbors, array, io\n" + setup + "\n"
    for call in calls:
        script += "try:\n    %s\n    print('no error')\nexcept Exception as e:\n    print(type(e).__name__ + ': ' + str(e))\n" % call
    return run(script).splitlines()


def test_bad_calls(run, wine_files):
    path, stored, X = wine_files[0]
    setup = f"""
m = emlneighbors.new(3, 2, 2)
h = array.array('h', [1, 2])
m.additem(h, 0)
w = emlneighbors.new({stored.n_items}, {stored.n_features}, {stored.k})
emlneighbors.load_model(w, {str(path)!r})
x = array.array('h', [0] * {stored.n_features})
"""
    out = _errors(run, setup, [
        "m.predict(h)",                                   # k=2 but one item
        "m.additem(h, 1); m.additem(h, 2); m.additem(h, 3)",  # the 4th is over capacity
        "m.additem(array.array('h', [1, 2, 3]), 0)",
        "m.additem(array.array('f', [1, 2]), 0)",
        "m.additem(h, -1)",
        "m.additem(h, 65535)",
        "m.predict(array.array('h', [1]))",
        "m.predict([1, 2])",
        "w.additem(x, 3)",                                # wine has classes 0..2
        "w.additem(x)",
        "m.remove(5)",
        "m.setitem(-1, h, 0)",
        "m.getitem(0, array.array('h', [0]))",
        "m.kneighbors(h, array.array('f', [0]), array.array('H', [0, 0]))",
        "m.kneighbors(h, array.array('f', [0, 0]), array.array('b', [0, 0]))",
        "m.k = 3",
        "emlneighbors.new(0, 2, 1)",
        "emlneighbors.new(5, 2, 6)",
        "emlneighbors.new(5, 0, 1)",
        "emlneighbors.load_model(w, 42)",
        "emlneighbors.load_model('not a model', io.StringIO(''))",
        "emlneighbors.Model.predict(42, h)",
    ])
    assert out == [
        "ValueError: k=2 is larger than the 1 items stored",
        "ValueError: over capacity: all 3 items of emlneighbors.new() are in use",
        "ValueError: x: expected 2 features, got 3",
        "TypeError: x: expected array('h'), got typecode 'f'",
        "ValueError: label -1 out of range 0..65534",
        "ValueError: label 65535 out of range 0..65534",
        "ValueError: x: expected 2 features, got 1",
        "TypeError: x: expected array('h'), got list",
        "ValueError: label 3 out of range 0..2",
        "ValueError: label missing: this model's items are labelled",
        "IndexError: item index 5 out of range: 3 items stored",
        "IndexError: item index -1 out of range: 3 items stored",
        "ValueError: out: expected 2 items, got 1",
        "ValueError: dist_out and index_out: expected k=2 items each, got 1 and 2",
        "TypeError: index_out: array('b') cannot hold item indices up to 2",
        "ValueError: k must be 1..2 (the k given to emlneighbors.new()), got 3",
        "ValueError: emlneighbors.new: max_items must be 1..16777216, got 0",
        "ValueError: emlneighbors.new: k must be 1..max_items (5), got 6",
        "ValueError: emlneighbors.new: n_features must be 1..65535, got 0",
        "TypeError: load_model: expected a file opened for reading or a path, got int",
        "TypeError: load_model: expected a model from emlneighbors.new(), got str",
        "TypeError: argument should be a 'Model' not a 'int'",
    ]


def _good_text(stored) -> list[str]:
    """The file's records without its end record (cases are sealed again after an edit)."""
    lines = neighbors_format.dumps(stored).splitlines()
    assert lines[-1].startswith("end,")
    return lines[:-1]


def _with_item(lines, header, item):
    return lines[:header + 1] + [item] + lines[header + 2:]


def test_bad_files(run, wine_files):
    _, stored, _ = wine_files[0]
    _, stored_float, _ = wine_files[1]
    good = _good_text(stored)
    good_float = _good_text(stored_float)
    header = good.index("items")
    item, item_float = good[header + 1], good_float[header + 1]
    sealed_text = records.seal("\n".join(good) + "\n")
    # name: (lines, sealed again after the edit, or the raw text; a part of the message)
    cases = {
        "version 1": (["mpyml-neighbors,1"] + good[1:],
                      "line 1: version 1 is no longer read by this emlneighbors (it reads version 3): export the model again"),
        "version 2": (["mpyml-neighbors,2"] + good[1:], "line 1: version 2 is no longer read by this emlneighbors"),
        "wrong version": (["mpyml-neighbors,4"] + good[1:], "line 1: this file's format version is not supported"),
        "wrong format": (["mpyml-trees,1"] + good[1:], "line 1: expected 'mpyml-neighbors,<value>'"),
        "missing items": (good[:-3], "line %d: the file is truncated or corrupt: it ends after line %d, expected an item"
                          % (len(good) - 2, len(good) - 3)),
        "header only": (good[:5], "line 6: the file is truncated or corrupt: it ends after line 5, expected 'n_features,<value>'"),
        "bad metric": ([l if not l.startswith("metric") else "metric,cosine" for l in good], "line 4: unknown metric 'cosine'"),
        "bad dtype": ([l if not l.startswith("dtype") else "dtype,int8" for l in good], "line 3: unknown dtype 'int8'"),
        "n_features": ([l if not l.startswith("n_features") else "n_features,12" for l in good],
                       "the file's items have 12 features but this model was made for 13"),
        "n_features 2**64": ([l if not l.startswith("n_features") else "n_features,18446744073709551629" for l in good],
                             "line 6: n_features must be 1..65535, got 18446744073709551629"),
        "k above capacity": ([l if not l.startswith("k,") else "k,7" for l in good], "the file's k=7 is not within 1..4"),
        "k 2**64": ([l if not l.startswith("k,") else "k,18446744073709551619" for l in good], "line 8: k must be 1..65535"),
        "too many items": ([l if not l.startswith("n_items") else "n_items,500" for l in good],
                           "n_items=500: must be k=3..178"),
        "short item": (_with_item(good, header, item.rsplit(",", 1)[0]),
                       "line %d: an item needs 13 features, got 12" % (header + 2)),
        "label out of range": (_with_item(good, header, "7" + item[1:]), "line %d: label must be 0..2, got 7" % (header + 2)),
        "label 2**64": (_with_item(good, header, "18446744073709551617" + item[1:]),
                        "line %d: label must be 0..2, got 18446744073709551617" % (header + 2)),
        "int16 out of range": (_with_item(good, header, item.rsplit(",", 1)[0] + ",40000"),
                               "an int16 feature must be -32768..32767, got 40000"),
        "int16 2**64": (_with_item(good, header, item.rsplit(",", 1)[0] + ",18446744073709551616"),
                        "an int16 feature must be -32768..32767, got 18446744073709551616"),
        "not a number": (_with_item(good, header, item.rsplit(",", 1)[0] + ",abc"),
                         "line %d: an int16 feature: expected a decimal integer, got 'abc'" % (header + 2)),
        "extra line": (good + [good[-1]], "line %d: unexpected line after the last item" % (len(good) + 1)),
        "bad hex": (_with_item(good_float, header, item_float.rsplit(",", 1)[0] + ",3f80"), "expected 8 hex digits"),
        "signed hex": (_with_item(good_float, header, item_float.rsplit(",", 1)[0] + ",-0000001"),
                       "expected 8 hex digits (IEEE-754 float32 bits), got '-0000001'"),
        "0x hex": (_with_item(good_float, header, item_float.rsplit(",", 1)[0] + ",0x3f8000"),
                   "expected 8 hex digits (IEEE-754 float32 bits), got '0x3f8000'"),
        "short float item": (_with_item(good_float, header, item_float.rsplit(",", 1)[0]), "expected 13 values, got 12"),
        "bad threshold": ([l if not l.startswith("threshold") else "threshold,1.5" for l in good], "expected 8 hex digits"),
        "classes vs kind": ([l if not l.startswith("n_classes") else "n_classes,0" for l in good],
                            "n_classes must be at least 1 for a classifier"),
        "classes count": ([l if not l.startswith("classes,") else "classes,int,2" for l in good], "2 classes, but n_classes is 3"),
        "no end record": ("\n".join(good) + "\n", "the file is truncated or corrupt: it ends after line %d without its end record"
                          % len(good)),
        "cut inside a number": (sealed_text[:-40], "the file is truncated or corrupt: it ends inside line"),
        "cut 3 bytes": (sealed_text[:len("\n".join(good)) - 3], "the file is truncated or corrupt: it ends inside line"),
        "changed digit": (sealed_text.replace("\n" + item + "\n", "\n" + item[:-1] + "9\n"), "the file is truncated or corrupt: its CRC-32 is"),
        "random bytes": ("\x9a\x00\xfe\x10zz\x85", "the file is truncated or corrupt"),
        "empty": ("", "line 0: the file is truncated or corrupt: it ends after line 0, expected 'mpyml-neighbors,<value>'"),
    }
    script = "import emlneighbors, io\nm = emlneighbors.new(178, 13, 4)\n"
    for name, (lines, _) in cases.items():
        text = records.seal("\n".join(lines) + "\n") if isinstance(lines, list) else lines
        cases[name] = (text, cases[name][1])
        script += ("try:\n    emlneighbors.load_model(m, io.BytesIO(%r))\n    print('loaded')\n"
                   "except ValueError as e:\n    print(str(e), m.n_items, m.typecode)\n") % text.encode("latin-1")
    out = run(script).splitlines()
    assert len(out) == len(cases)
    for (name, (text, message)), line in zip(cases.items(), out):
        assert line.startswith("model file line") and message in line, (name, line)
        assert line.endswith(" 0 None"), (name, line)  # a failed load leaves the model empty
        if name != "k above capacity":  # the host reader refuses every file the device refuses (but capacity)
            with pytest.raises(ValueError):
                neighbors_format.read(text.encode("latin-1"))


def test_neighbors_model_has_no_labels(run, tmp_path):
    X = np.arange(20).reshape(10, 2)
    path = tmp_path / "nn.csv"
    mpyml.export(NearestNeighbors(n_neighbors=2).fit(X), path, novelty_percentile=None)
    out = _errors(run, f"m = emlneighbors.new(10, 2, 2)\nemlneighbors.load_model(m, {str(path)!r})\nh = array.array('h', [1, 2])",
                  ["m.predict(h)", "m.additem(h, 1)", "print(m.labeled, m.n_classes, m.getitem(0, h))"])
    assert out[0].startswith("RuntimeError: predict: the items have no labels")
    assert out[1].startswith("ValueError: label given, but this model's items have no labels")
    assert out[2] == "False 0 None"


def test_float32_items_learned_on_device_and_saved(run, tmp_path):
    saved = tmp_path / "f.csv"
    out = run(f"""
import emlneighbors, array
m = emlneighbors.new(4, 2, 1)
try:
    m.additem(array.array('f', [1.0]), 0)     # wrong length: the model stays without items
except ValueError as e:
    print(e)
m.additem(array.array('f', [0.5, -1.0]))      # unlabelled items are fine too
m.additem(array.array('f', [3.0, 4.0]))
print(m.typecode, m.labeled, m.n_items, m.score(array.array('f', [3.0, 0.0])))
emlneighbors.save_model(m, {str(saved)!r})
m2 = emlneighbors.new(4, 2, 1)
with open({str(saved)!r}, 'rb') as f:
    emlneighbors.load_model(m2, f)
d = array.array('f', [0.0])
i = array.array('i', [0])
m2.kneighbors(array.array('f', [3.0, 3.5]), d, i)
print(m2.typecode, m2.labeled, list(i), list(d))
""").splitlines()
    from mpyml.neighbors import sqrt
    score = float(sqrt(np.float32(7.25))[0])  # nearest of (3, 0) is (0.5, -1): 2.5^2 + 1^2
    assert out == ["x: expected 2 features, got 1", "f False 2 %r" % score, "f False [1] [0.5]"]
    stored = neighbors_format.load(saved)
    assert stored.kind == "neighbors" and stored.dtype == "float32" and stored.labels is None
    np.testing.assert_array_equal(stored.items, np.array([[0.5, -1.0], [3.0, 4.0]], dtype=np.float32))
