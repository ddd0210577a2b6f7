"""emlmixture on the unix port: GaussianMixture, BayesianGaussianMixture, GaussianNB,
EllipticEnvelope, KMeans and MiniBatchKMeans against scikit-learn and against the numpy mirror
(mpyml.mixture.StoredMixture) of the device arithmetic, on bundled datasets and a synthetic
condition-monitoring set; on-device k-means updates and save; bad input."""

from __future__ import annotations

import json
import warnings
from functools import lru_cache

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from mpyml import build, device, mixture
from mpyml.formats import mixture as mixture_format
from mpyml.vibration import condition_monitoring
from mpyml import ExportError


@pytest.fixture(scope="module", autouse=True)
def built():
    build.build("emlmixture", "x64")


@lru_cache(maxsize=None)
def dataset(name: str):
    if name == "vibration":
        return condition_monitoring()
    loader = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name in ("wine", "breast_cancer", "digits"):
        # Mixtures and envelopes on many raw features need whitening (a covariance of tiny and huge
        # variances); PCA (fitted on the host) stands in for the feature extraction a device would do.
        X = PCA(n_components=8 if name == "digits" else 6, random_state=0).fit_transform(StandardScaler().fit_transform(X))
    return X.astype(np.float32), y


_DEVICE_SCRIPT = """
import array, emlmixture, json
model = emlmixture.new({d}, {k})
emlmixture.load_model(model, {path!r})
X = array.array('f', bytes(4 * {n} * {d}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
res = {{'kind': model.kind, 'cov': model.covariance_type}}
x = array.array('f', bytes(4 * {d}))
pred = []
outl = []
for r in range({n}):
    for i in range({d}):
        x[i] = X[r * {d} + i]
    pred.append(model.predict(x))
    if {outliers}:
        outl.append(model.is_outlier(x))
res['predict'] = pred
res['is_outlier'] = outl
def many(name, width):
    out = array.array('f', bytes(4 * {n} * width))
    getattr(model, name)(X, out)
    return ['%08x' % b for b in array.array('I', bytearray(out))]
for name, width in {methods}:
    res[name] = many(name, width)
print(json.dumps(res))
"""

METHODS = {
    "mixture": [("score_samples", 1), ("predict_proba", "k")],
    "naive_bayes": [("predict_proba", "k")],
    "envelope": [("mahalanobis", 1), ("decision_function", 1), ("score_samples", 1)],
    "kmeans": [("transform", "k")],
}


def run_device(stored, X, tmp_path):
    path, x_path = tmp_path / "model.txt", tmp_path / "X.bin"
    mixture_format.save(stored, path)
    X = np.ascontiguousarray(X, dtype=np.float32)
    x_path.write_bytes(X.tobytes())
    k = stored.n_components
    methods = [(name, k if width == "k" else width) for name, width in METHODS[stored.kind]]
    outliers = stored.kind == "envelope" or stored.threshold is not None
    out = device.run(_DEVICE_SCRIPT.format(d=stored.n_features, k=k, path=str(path), n=len(X), x_path=str(x_path),
                                           methods=methods, outliers=outliers))
    res = json.loads(out)
    for name, _ in methods:
        res[name] = np.array([int(h, 16) for h in res[name]], dtype=np.uint32).view(np.float32).reshape(len(X), -1).squeeze(1) \
            if dict(methods)[name] == 1 else np.array([int(h, 16) for h in res[name]], dtype=np.uint32).view(np.float32).reshape(len(X), -1)
    res["predict"] = np.array(res["predict"])
    res["is_outlier"] = np.array(res["is_outlier"], dtype=bool)
    return res


def f64(X):
    return np.asarray(X, dtype=np.float32).astype(np.float64)


MIXTURE_CASES = [(cls, cov, name) for name in ("iris", "wine", "breast_cancer", "digits", "vibration")
                 for cov in ("full", "tied", "diag", "spherical") for cls in (GaussianMixture, BayesianGaussianMixture)]


@pytest.mark.parametrize("cls,cov,name", MIXTURE_CASES, ids=lambda v: getattr(v, "__name__", v))
def test_mixture_parity(cls, cov, name, tmp_path):
    X, _ = dataset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(n_components=4, covariance_type=cov, random_state=0, max_iter=200).fit(X)
    stored = mixture.mixture_from_sklearn(est, X, outlier_percentile=2.0)
    res = run_device(stored, X, tmp_path)
    assert res["kind"] == "mixture" and res["cov"] == cov
    # device == numpy mirror, bit for bit
    np.testing.assert_array_equal(res["score_samples"], stored.score_samples(X))
    np.testing.assert_array_equal(res["predict_proba"], stored.predict_proba(X))
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["is_outlier"], stored.is_outlier(X))
    # against scikit-learn
    np.testing.assert_allclose(res["score_samples"], est.score_samples(f64(X)), rtol=0, atol=1e-4)
    np.testing.assert_allclose(res["predict_proba"], est.predict_proba(f64(X)), rtol=0, atol=1e-5)
    proba = est.predict_proba(f64(X))
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # rows whose top two components are not tied within float32
    np.testing.assert_array_equal(res["predict"][clear], est.predict(f64(X))[clear])
    assert abs(res["is_outlier"].mean() - 0.02) < 0.01


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "vibration"])
def test_naive_bayes_parity(name, tmp_path):
    X, y = dataset(name)
    if name == "digits":
        X, y = load_digits(return_X_y=True)  # raw pixels: GaussianNB's own use (var_smoothing keeps variances > 0)
        X = X.astype(np.float32)
    est = GaussianNB().fit(X, y)
    stored = mixture.mixture_from_sklearn(est)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(est.classes_[res["predict"]], est.predict(f64(X)))
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["predict_proba"], stored.predict_proba(X))
    np.testing.assert_allclose(res["predict_proba"], est.predict_proba(f64(X)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "vibration"])
def test_elliptic_envelope_parity(name, tmp_path):
    X, _ = dataset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = EllipticEnvelope(contamination=0.05, random_state=0).fit(X)
    stored = mixture.mixture_from_sklearn(est)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["predict"], est.predict(f64(X)))
    np.testing.assert_array_equal(res["is_outlier"], est.predict(f64(X)) == -1)
    np.testing.assert_array_equal(res["mahalanobis"], stored.mahalanobis(X).astype(np.float32))
    np.testing.assert_allclose(res["mahalanobis"], est.mahalanobis(f64(X)), rtol=1e-6)
    np.testing.assert_allclose(res["decision_function"], est.decision_function(f64(X)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res["score_samples"], est.score_samples(f64(X)), rtol=1e-6)


def test_elliptic_envelope_rows_at_threshold(tmp_path):
    """Rows whose Mahalanobis distance is the threshold (to float64 rounding) and their float32
    neighbours: the device's sign is scikit-learn's on every one."""
    X, _ = dataset("vibration")
    est = EllipticEnvelope(contamination=0.1, random_state=0).fit(X)
    stored = mixture.mixture_from_sklearn(est)
    # Walk along lines from the location to training rows, to the float32 point where the sign flips.
    rows = []
    for x in X[:60]:
        direction = (x - est.location_).astype(np.float64)
        m = est.mahalanobis(direction[None, :] + est.location_)[0]
        scale = np.sqrt(-est.offset_ / m)
        edge = (est.location_ + scale * direction).astype(np.float32)
        for steps in range(-3, 4):
            rows.append(np.nextafter(edge, np.float32(np.inf) * np.sign(steps) if steps else edge).astype(np.float32))
    R = np.asarray(rows, dtype=np.float32)
    res = run_device(stored, R, tmp_path)
    np.testing.assert_array_equal(res["predict"], est.predict(f64(R)))
    assert 0 < (res["predict"] == 1).sum() < len(R)


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "vibration"])
def test_kmeans_parity(cls, name, tmp_path):
    X, _ = dataset(name)
    est = cls(n_clusters=5, random_state=0, n_init=3).fit(X)
    stored = mixture.mixture_from_sklearn(est)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["transform"], stored.transform(X))
    np.testing.assert_array_equal(res["predict"], est.predict(X))
    np.testing.assert_allclose(res["transform"], est.transform(f64(X)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale,words", [(1e20, "beyond float32's 3.4e38"), (1e-40, "below 2\\*\\*-102")])
def test_kmeans_whose_float32_distances_overflow_or_vanish_is_refused(scale, words):
    """Rows of magnitude 1e20 or 1e-40: the device's float32 squared distances overflow or vanish, and 57/300 rows
    went to another centre than scikit-learn's; refused, alone and behind a folded scaler."""
    from sklearn.pipeline import make_pipeline

    X, _ = load_iris(return_X_y=True)
    for est in (KMeans(3, n_init=2, random_state=0), make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0))):
        with pytest.raises(ExportError, match="cluster_centers_: their euclidean distances.*" + words):
            mixture.mixture_from_sklearn(est.fit(X * scale))


def test_naive_bayes_zero_prior_is_refused_by_name():
    """GaussianNB(priors=[.5, .5, 0]): log(0) = -inf; refused naming class_prior_ and the class (the message was
    "GaussianNB's parameters has NaN or infinite values")."""
    X, y = load_iris(return_X_y=True)
    est = GaussianNB(priors=[0.5, 0.5, 0.0]).fit(X, y)
    with pytest.raises(ExportError, match=r"class_prior_ holds a zero prior \(class 2\)"):
        mixture.mixture_from_sklearn(est)


def test_kmeans_ties_go_to_the_first_centre(tmp_path):
    est = KMeans(n_clusters=3, random_state=0, n_init=1).fit(np.array([[0, 0], [2, 0], [4, 0], [0, 1], [2, 1], [4, 1]], dtype=np.float32))
    est.cluster_centers_ = np.array([[0, 0], [2, 0], [4, 0]], dtype=np.float32)
    X = np.array([[1, 0], [3, 0], [1, 5], [3, -5]], dtype=np.float32)  # each exactly between two centres
    stored = mixture.mixture_from_sklearn(est)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["predict"], est.predict(X))
    np.testing.assert_array_equal(res["predict"], [0, 1, 0, 1])


_LEARN_SCRIPT = """
import array, emlmixture
model = emlmixture.new({d}, {k})
emlmixture.load_model(model, {path!r})
X = array.array('f', bytes(4 * {n} * {d}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
x = array.array('f', bytes(4 * {d}))
labels = []
for r in range({n}):
    for i in range({d}):
        x[i] = X[r * {d} + i]
    labels.append(model.partial_fit(x))
emlmixture.save_model(model, {out!r})
again = emlmixture.new({d}, {k})
emlmixture.load_model(again, {out!r})
print(again.loaded, ','.join(str(v) for v in labels))
"""


def test_kmeans_partial_fit_and_save(tmp_path):
    X, _ = dataset("vibration")
    est = MiniBatchKMeans(n_clusters=4, random_state=0, n_init=3).fit(X[:300])
    stored = mixture.mixture_from_sklearn(est)
    path, out, x_path = tmp_path / "km.txt", tmp_path / "km_updated.txt", tmp_path / "X.bin"
    mixture_format.save(stored, path)
    new = X[300:]
    x_path.write_bytes(new.tobytes())
    text = device.run(_LEARN_SCRIPT.format(d=X.shape[1], k=4, path=str(path), n=len(new), x_path=str(x_path), out=str(out)))
    labels = np.array([int(v) for v in text.split()[1].split(",")])
    expected = stored.partial_fit(new)  # the mirror, row by row
    np.testing.assert_array_equal(labels, expected)
    saved = mixture_format.load(out)
    for a, b in zip(saved.rows, stored.rows):
        np.testing.assert_array_equal(a, b)  # centres and counts bit for bit
    assert mixture_format.dumps(saved) == out.read_text()
    # the centres follow scikit-learn's MiniBatchKMeans update with batches of one row
    ref = MiniBatchKMeans(n_clusters=4, random_state=0, n_init=3).fit(X[:300])
    centres, counts = ref.cluster_centers_.astype(np.float64), ref._counts.astype(np.float64)
    for x, label in zip(new.astype(np.float64), labels):
        counts[label] += 1
        centres[label] += (x - centres[label]) / counts[label]
    np.testing.assert_allclose(np.array(saved.rows[:4], dtype=np.float64), centres, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- bad input


def _error(script: str) -> str:
    try:
        out = device.run(script)
    except device.DeviceError as e:
        return str(e)
    return out


def _stored_gmm():
    X, _ = dataset("iris")
    return mixture.mixture_from_sklearn(GaussianMixture(n_components=3, random_state=0).fit(X), X), X


def test_bad_calls(tmp_path):
    stored, X = _stored_gmm()
    path = tmp_path / "gm.txt"
    mixture_format.save(stored, path)
    script = """
import array, emlmixture
model = emlmixture.new(4, 3)
def check(f):
    try:
        f()
    except Exception as e:
        print(type(e).__name__, e)
    else:
        print('no error')
check(lambda: model.predict(array.array('f', [0.0] * 4)))
emlmixture.load_model(model, %r)
check(lambda: model.predict(array.array('f', [0.0] * 3)))
check(lambda: model.predict(array.array('h', [0] * 4)))
check(lambda: model.predict([0.0] * 4))
check(lambda: model.score_samples(array.array('f', [0.0] * 6), array.array('f', [0.0] * 2)))
check(lambda: model.score_samples(array.array('f', [0.0] * 8), array.array('f', [0.0] * 3)))
check(lambda: model.transform(array.array('f', [0.0] * 4), array.array('f', [0.0] * 3)))
check(lambda: model.partial_fit(array.array('f', [0.0] * 4)))
check(lambda: emlmixture.save_model(model, 'x.txt'))
check(lambda: emlmixture.load_model(emlmixture.new(3, 3), %r))
check(lambda: emlmixture.load_model(emlmixture.new(4, 2), %r))
check(lambda: emlmixture.load_model(model, 42))
check(lambda: emlmixture.new(0, 3))
print(model.loaded, model.n_features, model.n_components, model.kind, model.covariance_type)
""" % (str(path), str(path), str(path))
    lines = _error(script).splitlines()
    assert lines[0].startswith("RuntimeError no model loaded")
    assert lines[1] == "ValueError x: expected 4 features, got 3"
    assert lines[2] == "TypeError x: expected array('f'), got typecode 'h'"
    assert lines[3] == "TypeError x: expected array('f'), got list"
    assert lines[4] == "ValueError x: expected rows of 4 features, got 6 values"
    assert lines[5] == "ValueError out: expected 2 values, got 3"
    assert lines[6] == "TypeError transform: not available for a mixture model"
    assert lines[7] == "TypeError partial_fit: not available for a mixture model"
    assert lines[8] == "TypeError save_model: expected a loaded emlmixture k-means model"
    assert lines[9] == "ValueError model file line 6: model needs 4 features but emlmixture.new() was given capacity for 3"
    assert lines[10] == "ValueError model file line 6: model needs 3 components but emlmixture.new() was given capacity for 2"
    assert lines[11].startswith("TypeError load_model: expected a file")
    assert lines[12].startswith("ValueError emlmixture.new: max_features")
    assert lines[13] == "True 4 3 mixture full"


def _load_error(text: str, tmp_path) -> str:
    path = tmp_path / "bad.txt"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    script = """
import emlmixture
model = emlmixture.new(64, 16)
try:
    emlmixture.load_model(model, %r)
except Exception as e:
    print(type(e).__name__, e)
else:
    print('loaded')
print(model.loaded)
""" % str(path)
    out = _error(script).splitlines()
    assert out[-1] == "False" or out[0] == "loaded"
    return out[0]


def test_corrupt_files(tmp_path):
    from mpyml.formats.records import seal

    stored, _ = _stored_gmm()
    good = mixture_format.dumps(stored)
    assert _load_error(good, tmp_path) == "loaded"
    body = good[:good.rindex("end,")]
    lines = body.splitlines()
    # truncated anywhere, one byte changed
    for cut in (10, len(good) // 3, len(good) // 2, len(good) - 3):
        assert _load_error(good[:cut], tmp_path).startswith("ValueError model file line")  # streamed: the first bad record
    flipped = good.replace("values\n4", "values\n5", 1)
    assert "truncated or corrupt" in _load_error(flipped, tmp_path)

    def resealed(edit):
        return seal("\n".join(edit(list(lines))) + "\n")

    def set_line(i, text):
        return lambda ls: ls[:i] + [text] + ls[i + 1:]

    cases = {
        "format version is not supported": set_line(0, "mpyml-mixture,2"),
        "unknown kind 'forest'": set_line(1, "kind,forest"),
        "unknown covariance_type 'round'": set_line(2, "covariance_type,round"),
        "bad header": set_line(4, "n_components,0"),
        "expected 8 hex digits": lambda ls: ls[:7] + [ls[7][:-1]] + ls[8:],
        "wrong number of values in the row": lambda ls: ls[:7] + [ls[7] + ",3f800000"] + ls[8:],
        "value is NaN or infinite": lambda ls: ls[:7] + ["7fc00000" + ls[7][8:]] + ls[8:],
        "expected 'end,<n_records>,<crc32>'": lambda ls: ls[:-1],
        "unexpected line after the last row": lambda ls: ls + ["3f800000"],
    }
    for expected, edit in cases.items():
        message = _load_error(resealed(edit), tmp_path)
        assert message.startswith("ValueError model file line") and expected.split("'")[0] in message, (expected, message)
    # a mixture threshold must be float32 hex or none; an envelope needs its float64 offset
    message = _load_error(resealed(set_line(5, "threshold,3f80")), tmp_path)
    assert "bad header" in message


def test_export_errors():
    from sklearn.linear_model import LogisticRegression

    X, y = dataset("iris")
    with pytest.raises(ExportError, match="does not take LogisticRegression"):
        mixture.mixture_from_sklearn(LogisticRegression().fit(X, y))
    with pytest.raises(ExportError, match="not fitted"):
        mixture.mixture_from_sklearn(GaussianMixture())
    with pytest.raises(ExportError, match="GaussianMixture models only"):
        mixture.mixture_from_sklearn(KMeans(2, n_init=1).fit(X), X)
