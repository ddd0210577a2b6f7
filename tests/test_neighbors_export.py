"""Host side of k-NN export: what mpyml.export accepts and rejects, the file round trip,
and the RAM estimate."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

import mpyml
from mpyml import trees
from mpyml.formats import neighbors as neighbors_format
from mpyml.neighbors import Neighbors, StoredNeighbors


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return np.round(X * 10), y


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_file_round_trip(tmp_path, iris, dtype):
    X, y = iris
    stored = mpyml.export(KNeighborsClassifier(7, weights="distance", metric="chebyshev").fit(X, y), tmp_path / "m.csv",
                          feature_dtype=dtype, novelty_percentile=90)
    again = neighbors_format.load(tmp_path / "m.csv")
    for name in ("kind", "dtype", "metric", "weights", "k", "n_classes"):
        assert getattr(again, name) == getattr(stored, name)
    assert again.threshold == stored.threshold
    np.testing.assert_array_equal(again.items, stored.items)
    np.testing.assert_array_equal(again.labels, stored.labels)
    np.testing.assert_array_equal(again.classes, [0, 1, 2])
    assert neighbors_format.dumps(again) == (tmp_path / "m.csv").read_text()
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[:16] == [
        "mpyml-neighbors,3", "kind,classifier", "dtype,%s" % dtype, "metric,chebyshev", "weights,distance",
        "n_features,4", "n_classes,3", "k,7", "n_items,150", "threshold,%08x" % stored.threshold.view(np.uint32),
        "classes,int,3", "label,0", "label,1", "label,2", "feature_names,str,0", "items"]
    assert lines[-1].startswith("end,166,")


def test_convert_and_export_dispatch(tmp_path, iris):
    X, y = iris
    assert isinstance(mpyml.convert(KNeighborsClassifier().fit(X, y)), Neighbors)
    assert isinstance(mpyml.convert(RandomForestClassifier(2, random_state=0).fit(X, y)), trees.Forest)
    nn = mpyml.export(NearestNeighbors(n_neighbors=3, p=1).fit(X), tmp_path / "nn.csv", novelty_percentile=None)
    assert (nn.kind, nn.metric, nn.labels, nn.n_classes, nn.threshold) == ("neighbors", "manhattan", None, 0, None)
    forest = mpyml.export(RandomForestClassifier(2, random_state=0).fit(X, y), tmp_path / "rf.csv")
    assert (tmp_path / "rf.csv").read_text().startswith("mpyml-trees,3\n")
    assert forest.n_trees == 2


def test_ram_bytes(iris):
    # keys (8 per k), indices (4 per k), items, labels (2 per item), each rounded up to 8 bytes
    X, y = iris
    stored = StoredNeighbors("classifier", "int16", "euclidean", "uniform", 5, X.astype(np.int64), y, 3)
    assert stored.ram_bytes() == 40 + 24 + 150 * 4 * 2 + 304
    assert stored.ram_bytes(max_items=200, max_k=8) == 64 + 32 + 1600 + 400


@pytest.mark.parametrize("make, message", [
    (lambda X, y: KNeighborsClassifier(metric="cosine").fit(X, y), "metric 'cosine' is not supported"),
    (lambda X, y: KNeighborsClassifier(p=3).fit(X, y), "minkowski p=3"),
    (lambda X, y: KNeighborsClassifier(weights=lambda d: d).fit(X, y), "weights"),
    (lambda X, y: KNeighborsClassifier(metric="precomputed").fit(np.zeros((150, 150)), y), "precomputed"),
    (lambda X, y: KNeighborsClassifier(n_neighbors=200).fit(X, y), "k=200 must be 1..min"),
    (lambda X, y: KNeighborsClassifier().fit(X / 10, y), "whole numbers in -32768..32767"),
    (lambda X, y: KNeighborsClassifier().fit(X * 1000, y), "whole numbers in -32768..32767"),
    (lambda X, y: KNeighborsClassifier().fit(X, np.stack([y, y], axis=1)), "single-output"),
])
def test_export_rejects(tmp_path, iris, make, message):
    X, y = iris
    with pytest.raises(mpyml.ExportError, match=message.replace("(", r"\(").replace(".", r"\.")):
        mpyml.export(make(X, y), tmp_path / "bad.csv", feature_dtype="int16")


def test_float32_allows_any_values_and_bad_options(tmp_path, iris):
    X, y = iris
    stored = mpyml.export(KNeighborsClassifier().fit(X / 7.0, y), tmp_path / "f.csv", feature_dtype="float32")
    assert stored.items.dtype == np.float32
    with pytest.raises(mpyml.ExportError, match="feature_dtype"):
        mpyml.export(KNeighborsClassifier().fit(X, y), tmp_path / "f.csv", feature_dtype="int8")
    with pytest.raises(mpyml.ExportError, match="novelty_percentile"):
        mpyml.export(KNeighborsClassifier().fit(X, y), tmp_path / "f.csv", novelty_percentile=120)


@pytest.mark.parametrize("scale,words", [(1e20, "beyond float32's 3.4e38"), (1e-40, r"below 2\*\*-102")])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_float32_distances_that_overflow_or_vanish_are_refused(tmp_path, scale, words, metric):
    """Features of magnitude 1e20 (squared differences beyond float32) or 1e-40 (below its normal range): the
    device's float32 distances would tie where scikit-learn's float64 ones do not (105/300 rows agreed)."""
    X, y = load_iris(return_X_y=True)
    if metric != "euclidean" and scale > 1:
        scale = 1e38  # sums of differences overflow only here
    model = KNeighborsClassifier(3, metric=metric).fit(X * scale, y)
    with pytest.raises(mpyml.ExportError, match="the training rows: their %s distances.*%s" % (metric, words)):
        mpyml.export(model, tmp_path / "m.csv")
    assert mpyml.export(KNeighborsClassifier(3, metric=metric).fit(X * 1e-3, y), tmp_path / "m.csv").dtype == "float32"
