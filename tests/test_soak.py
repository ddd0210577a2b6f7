"""Soak: 10,000 load / predict / unload cycles per module on the unix port, one process per module;
after gc.collect() the heap has as many free bytes at the end as after three warm-up cycles."""

import warnings

import numpy as np
import pytest

import mpyml
from mpyml import build, device, iir

CYCLES = 10000

SOAK = """
import array, gc
%s
def soak(n):
    # locals only: no global dict or range iterator grows while the heap is measured
    # The first cycles intern names and fill caches once; and MicroPython's GC is conservative: a stale
    # pointer on the C stack can keep one earlier block alive (32 B seen with emliir, the same after 3
    # cycles as after 10,000). What must not happen is growth: measured after the warm-up.
    cycle()
    cycle()
    cycle()
    gc.collect()
    start = gc.mem_free()
    i = 0
    while i < n:
        cycle()
        i += 1
    gc.collect()
    return start, gc.mem_free()
print('%%d %%d' %% soak(%d))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from scipy import signal
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = tmp_path_factory.mktemp("soak")
    X, y = load_iris(return_X_y=True)
    pick = np.r_[0:4, 50:54, 100:104]
    names = np.array(["a", "b", "c"])[y]
    mpyml.export(make_pipeline(StandardScaler(), PCA(2), KNeighborsClassifier(3)).fit(X[pick], names[pick]),
                 d / "neighbors.csv")
    mpyml.export(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, names), d / "linear.csv")
    iir.save(signal.butter(4, 0.2, output="sos"), d / "iir.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=100, random_state=0).fit(X, y)
    stored = mpyml.export(clf, d / "net.bin", quantize="int8", representative_data=X)
    forest = make_pipeline(StandardScaler(), PCA(2), RandomForestClassifier(3, max_depth=3, random_state=0))
    trees = mpyml.export(forest.fit(X, names), d / "trees.csv").model
    mpyml.export(GaussianMixture(3, random_state=0).fit(X), d / "gmm.csv", X=X)
    mpyml.export(KMeans(3, n_init=2, random_state=0).fit(X), d / "kmeans.csv")
    for module in ("emlneighbors", "emllinear", "emliir", "emlcnn", "emlfft", "emltrees", "emlmixture"):
        build.build(module, "x64")
    return {"dir": d, "arena": stored.arena_bytes, "trees": trees.n_trees, "nodes": trees.n_nodes,
            "leaves": trees.n_leaves}


CYCLE = {
    "emlneighbors": """
import emlneighbors
x = array.array('f', [5.1, 3.5, 1.4, 0.2])
def cycle():
    m = emlneighbors.new(12, 2, 3)
    emlneighbors.load_model(m, '{dir}/neighbors.csv')
    m.predict(x)
    m.clear()
""",
    "emllinear": """
import emllinear
x = array.array('f', [5.1, 3.5, 1.4, 0.2])
p = array.array('f', [0, 0, 0])
def cycle():
    m = emllinear.new(2, 20)
    emllinear.load_model(m, '{dir}/linear.csv')
    m.predict(x)
    m.predict_proba(x, p)
    m.unload()
""",
    "emliir": """
import emliir
x = array.array('f', [0.5] * 32)
def cycle():
    f = emliir.load('{dir}/iir.txt')
    f.run(x)
    f.reset()
""",
    "emlcnn": """
import emlcnn
x = array.array('f', [5.1, 3.5, 1.4, 0.2])
out = array.array('f', [0, 0, 0])
def cycle():
    net = emlcnn.new({arena})
    emlcnn.load_model(net, '{dir}/net.bin')
    net.predict(x, out)
    net.unload()
""",
    "emltrees": """
import emltrees
x = array.array('f', [5.1, 3.5, 1.4, 0.2])
p = array.array('f', [0, 0, 0])
def cycle():
    m = emltrees.new({trees}, {nodes}, {leaves})
    emltrees.load_model(m, '{dir}/trees.csv')
    m.predict(x)
    m.predict_proba(x, p)
    m.unload()
""",
    "emlmixture": """
import emlmixture
x = array.array('f', [5.1, 3.5, 1.4, 0.2])
p = array.array('f', [0, 0, 0])
def cycle():
    m = emlmixture.new(4, 3)
    emlmixture.load_model(m, '{dir}/gmm.csv')
    m.predict(x)
    m.predict_proba(x, p)
    m.is_outlier(x)
    m.unload()
    k = emlmixture.new(4, 3)
    emlmixture.load_model(k, '{dir}/kmeans.csv')
    k.partial_fit(x)
    k.transform(x, p)
    k.unload()
""",
    "emlfft": """
import emlfft
re = array.array('f', [0.25] * 64)
im = array.array('f', [0.0] * 64)
def cycle():
    fft = emlfft.FFT(64)
    fft.run(re, im)
""",
}


@pytest.mark.parametrize("module", sorted(CYCLE))
def test_load_predict_unload_cycles_free_every_byte(files, module):
    code = CYCLE[module].format(**files)
    start, end = map(int, device.run(SOAK % (code, CYCLES), timeout=600).split())
    assert end == start, "%s: %d bytes free after %d cycles, %d after the warm-up" % (module, end, CYCLES, start)
