"""The emltrees API on the unix port: attributes, many-row calls, no heap allocation in predict."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import mpyml


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1).fit(X, y)
    path = tmp_path_factory.mktemp("m") / "digits.csv"
    stored = mpyml.export(rf, path, feature_dtype="int16")
    return path, stored, X.astype(np.int16)


@pytest.fixture(scope="module")
def regressor_model(tmp_path_factory):
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    rf = RandomForestRegressor(n_estimators=5, max_depth=5, random_state=1).fit(X, y)
    path = tmp_path_factory.mktemp("m") / "diabetes.csv"
    stored = mpyml.export(rf, path, feature_dtype="float32")
    return path, stored, X


def test_attributes(run_device, digits_model, regressor_model):
    path, stored, _ = digits_model
    rpath, rstored, _ = regressor_model
    out = run_device(f"""
import emltrees
m = emltrees.new(10, 2000, 1000)
print(m.loaded, m.n_features, m.max_trees, m.max_nodes, m.max_leaves)
emltrees.load_model(m, {str(path)!r})
print(m.loaded, m.kind, m.voting, m.typecode, m.n_features, m.n_classes, m.n_outputs, m.n_trees, m.n_nodes, m.n_leaves)
r = emltrees.new(5, 1000, 1000)
with open({str(rpath)!r}) as f:
    emltrees.load_model(r, f)
print(r.kind, r.voting, r.typecode, r.n_features, r.n_classes, r.n_outputs, r.n_trees)
print(isinstance(m, emltrees.Model))
""").split("\n")
    assert out[0] == "False None 10 2000 1000"
    assert out[1] == f"True classifier soft h 64 10 1 10 {stored.n_nodes} {stored.n_leaves}"
    assert out[2] == "regressor None f 10 0 1 5"
    assert out[3] == "True"


def test_single_and_many_rows_agree(run_device, digits_model):
    path, stored, X = digits_model
    rows = X[:40]
    out = run_device(f"""
import emltrees, array
m = emltrees.new(10, 2000, 1000)
emltrees.load_model(m, {str(path)!r})
X = array.array('h', {rows.ravel().tolist()!r})
single = [m.predict(X[i * 64:(i + 1) * 64]) for i in range(40)]
for code in 'bBhHiI':
    many = array.array(code, [0] * 40)
    m.predict_many(X, many)
    assert list(many) == single, code
proba = array.array('f', [0.0] * 10)
probas = array.array('f', [0.0] * 400)
m.predict_proba_many(X, probas)
for i in range(40):
    assert m.predict_proba(X[i * 64:(i + 1) * 64], proba) is proba
    assert list(proba) == list(probas[i * 10:(i + 1) * 10])
print(single)
""")
    assert eval(out) == stored.predict(rows).tolist()


def test_predict_allocates_nothing(run_device, digits_model, regressor_model):
    path, _, X = digits_model
    rpath, _, RX = regressor_model
    out = run_device(f"""
import emltrees, array, gc
m = emltrees.new(10, 2000, 1000)
emltrees.load_model(m, {str(path)!r})
r = emltrees.new(5, 1000, 1000)
emltrees.load_model(r, {str(rpath)!r})
x = array.array('h', {X[0].tolist()!r})
X = array.array('h', {X[:20].ravel().tolist()!r})
proba = array.array('f', [0.0] * 10)
probas = array.array('f', [0.0] * 200)
classes = array.array('H', [0] * 20)
rx = array.array('f', {RX[:20].ravel().tolist()!r})
values = array.array('f', [0.0] * 20)

def calls():
    m.predict(x)
    m.predict_proba(x, proba)
    m.predict_many(X, classes)
    m.predict_proba_many(X, probas)
    r.predict_many(rx, values)

calls()
gc.collect()
before = gc.mem_alloc()
for _ in range(200):
    calls()
print(gc.mem_alloc() - before)
""")
    assert int(out) == 0


def test_model_ram_matches_estimate(run_device, digits_model):
    path, stored, _ = digits_model
    out = run_device(f"""
import emltrees, gc
m = emltrees.new(10, 2000, 1000)
gc.collect()
before = gc.mem_alloc()
emltrees.load_model(m, {str(path)!r})
gc.collect()
print(gc.mem_alloc() - before)
""")
    # The model block is what stays allocated; the slack covers the heap's 16-byte
    # blocks and the few loader objects a conservative GC may still see on the stack.
    assert stored.ram_bytes() <= int(out) <= stored.ram_bytes() + 256


def test_loader_streams_lines(run_device, digits_model):
    """load_model needs only readline(): the file is never read whole."""
    path, stored, X = digits_model
    out = run_device(f"""
import emltrees, array
class LinesOnly:
    def __init__(self, path):
        self.f = open(path)
        self.calls = 0
    def readline(self):
        self.calls += 1
        return self.f.readline()
src = LinesOnly({str(path)!r})
m = emltrees.new(10, 2000, 1000)
emltrees.load_model(m, src)
print(m.predict(array.array('h', {X[5].tolist()!r})), src.calls)
""").split()
    assert int(out[0]) == stored.predict(X[5:6])[0]
    assert int(out[1]) > stored.n_nodes
