"""emlmixture with scikit-learn Pipelines: scalers, column selection and PCA in front of
GaussianMixture, BayesianGaussianMixture, GaussianNB, EllipticEnvelope, KMeans and MiniBatchKMeans,
folded into the model's parameters on the host (mpyml.mixture.Fold). On the unix port against
the Pipeline's own predict / score_samples / ..., with the bare estimators' tolerances, and bit for
bit against the numpy mirror."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, VarianceThreshold
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler

from mpyml import build, device, mixture
from mpyml.formats import mixture as mixture_format
from mpyml import ExportError
from mpyml.vibration import condition_monitoring
from test_mixture import run_device

FRONTS = {
    "standard": lambda d: [StandardScaler()],
    "minmax": lambda d: [MinMaxScaler()],
    "maxabs": lambda d: [MaxAbsScaler()],
    "robust_select": lambda d: [RobustScaler(), SelectKBest(k=d - 1)],
    "select_standard": lambda d: [VarianceThreshold(1e-3), StandardScaler()],
    "standard_pca": lambda d: [StandardScaler(), PCA(min(6, d - 1), random_state=0)],
    "standard_pca_whiten": lambda d: [StandardScaler(), PCA(min(6, d - 1), whiten=True, random_state=0)],
}
PER_FEATURE = [name for name in FRONTS if "pca" not in name]


@pytest.fixture(scope="module", autouse=True)
def built():
    build.build("emlmixture", "x64")


@lru_cache(maxsize=None)
def dataset(name: str):
    """Raw float32 rows (no host-side preprocessing: the pipeline's steps do it) and labels."""
    if name == "vibration":
        return condition_monitoring()
    loader = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    return X.astype(np.float32), y


def fitted(front: str, final, name: str):
    """The pipeline fitted on the float32 rows as float64 (scikit-learn's arithmetic in float64)."""
    X, y = dataset(name)
    pipe = make_pipeline(*FRONTS[front](X.shape[1]), final)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe.fit(X.astype(np.float64), y)


def f64(X):
    return np.asarray(X, dtype=np.float32).astype(np.float64)


MIXTURE_CASES = [(front, cov, name) for name in ("iris", "wine", "vibration") for front in FRONTS
                 for cov in ("full", "tied", "diag", "spherical")]
MIXTURE_CASES += [(front, cov, name) for name in ("breast_cancer", "digits") for front in ("standard_pca", "standard_pca_whiten")
                  for cov in ("full", "tied", "diag", "spherical")]


@pytest.mark.parametrize("front,cov,name", MIXTURE_CASES)
def test_gaussian_mixture_pipeline_parity(front, cov, name, tmp_path):
    X, _ = dataset(name)
    pipe = fitted(front, GaussianMixture(n_components=4, covariance_type=cov, random_state=0, max_iter=200), name)
    stored = mixture.mixture_from_sklearn(pipe, X, outlier_percentile=2.0)
    assert stored.n_features == X.shape[1]
    expected_cov = {"spherical": "diag"}.get(cov, cov) if front in PER_FEATURE else ("tied" if cov == "tied" else "full")
    assert stored.covariance_type == expected_cov
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["score_samples"], stored.score_samples(X))
    np.testing.assert_array_equal(res["predict_proba"], stored.predict_proba(X))
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["is_outlier"], stored.is_outlier(X))
    np.testing.assert_allclose(res["score_samples"], pipe.score_samples(f64(X)), rtol=0, atol=1e-4)
    proba = pipe.predict_proba(f64(X))
    np.testing.assert_allclose(res["predict_proba"], proba, rtol=0, atol=1e-5)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    np.testing.assert_array_equal(res["predict"][clear], pipe.predict(f64(X))[clear])
    assert abs(res["is_outlier"].mean() - 0.02) < 0.01


@pytest.mark.parametrize("front", ["standard", "standard_pca_whiten"])
def test_bayesian_gaussian_mixture_pipeline_parity(front, tmp_path):
    X, _ = dataset("vibration")
    pipe = fitted(front, BayesianGaussianMixture(n_components=5, covariance_type="full", random_state=0, max_iter=300), "vibration")
    stored = mixture.mixture_from_sklearn(pipe, X)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["score_samples"], stored.score_samples(X))
    np.testing.assert_allclose(res["score_samples"], pipe.score_samples(f64(X)), rtol=0, atol=1e-4)
    np.testing.assert_allclose(res["predict_proba"], pipe.predict_proba(f64(X)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["standard", "robust_select"])
def test_many_raw_features_full_covariance(name, tmp_path):
    """30 raw features (breast_cancer) with a full covariance: log-likelihoods of magnitude ~100,
    where float32 resolves ~1e-5; the device stays within 2e-6 of |score| + 1e-4."""
    X, _ = dataset("breast_cancer")
    pipe = fitted(name, GaussianMixture(n_components=3, covariance_type="full", random_state=0), "breast_cancer")
    stored = mixture.mixture_from_sklearn(pipe, X)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["score_samples"], stored.score_samples(X))
    expected = pipe.score_samples(f64(X))
    np.testing.assert_allclose(res["score_samples"], expected, rtol=2e-6, atol=1e-4)


@pytest.mark.parametrize("front", PER_FEATURE)
@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "vibration"])
def test_naive_bayes_pipeline_parity(front, name, tmp_path):
    X, y = dataset(name)
    pipe = fitted(front, GaussianNB(), name)
    stored = mixture.mixture_from_sklearn(pipe)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["predict_proba"], stored.predict_proba(X))
    np.testing.assert_array_equal(pipe.classes_[res["predict"]], pipe.predict(f64(X)))
    np.testing.assert_allclose(res["predict_proba"], pipe.predict_proba(f64(X)), rtol=0, atol=1e-5)


ENVELOPE_CASES = [(front, name) for name in ("iris", "wine", "vibration") for front in FRONTS]
ENVELOPE_CASES += [(front, name) for name in ("breast_cancer", "digits") for front in ("standard_pca", "standard_pca_whiten")]


@pytest.mark.parametrize("front,name", ENVELOPE_CASES)
def test_elliptic_envelope_pipeline_parity(front, name, tmp_path):
    X, _ = dataset(name)
    pipe = fitted(front, EllipticEnvelope(contamination=0.05, random_state=0), name)
    stored = mixture.mixture_from_sklearn(pipe)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["mahalanobis"], stored.mahalanobis(X).astype(np.float32))
    expected = pipe.predict(f64(X))
    np.testing.assert_array_equal(res["predict"], expected)
    np.testing.assert_array_equal(res["is_outlier"], expected == -1)
    np.testing.assert_allclose(res["mahalanobis"], pipe[-1].mahalanobis(pipe[:-1].transform(f64(X))), rtol=1e-6)
    np.testing.assert_allclose(res["decision_function"], pipe.decision_function(f64(X)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res["score_samples"], pipe.score_samples(f64(X)), rtol=1e-6)


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
@pytest.mark.parametrize("front", PER_FEATURE)
@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "vibration"])
def test_kmeans_pipeline_parity(cls, front, name, tmp_path):
    X, _ = dataset(name)
    pipe = fitted(front, cls(n_clusters=5, random_state=0, n_init=3), name)
    stored = mixture.mixture_from_sklearn(pipe)
    assert stored.covariance_type == "diag"
    res = run_device(stored, X, tmp_path)
    np.testing.assert_array_equal(res["predict"], stored.predict(X))
    np.testing.assert_array_equal(res["transform"], stored.transform(X))
    np.testing.assert_array_equal(res["predict"], pipe.predict(f64(X)))
    np.testing.assert_allclose(res["transform"], pipe.transform(f64(X)), rtol=1e-5, atol=1e-5)


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
print(model.covariance_type, ','.join(str(v) for v in labels))
"""


def test_weighted_kmeans_partial_fit_and_save(tmp_path):
    """A scaler in front of MiniBatchKMeans: on-device updates move the raw-space centres as the
    scaled ones would move, and the saved file keeps the weights."""
    X, _ = dataset("vibration")
    pipe = make_pipeline(StandardScaler(), MiniBatchKMeans(n_clusters=4, random_state=0, n_init=3)).fit(f64(X[:300]))
    stored = mixture.mixture_from_sklearn(pipe)
    path, out, x_path = tmp_path / "km.txt", tmp_path / "km2.txt", tmp_path / "X.bin"
    mixture_format.save(stored, path)
    new = X[300:]
    x_path.write_bytes(new.tobytes())
    text = device.run(_LEARN_SCRIPT.format(d=X.shape[1], k=4, path=str(path), n=len(new), x_path=str(x_path), out=str(out)))
    cov, labels = text.split()
    assert cov == "diag"
    labels = np.array([int(v) for v in labels.split(",")])
    np.testing.assert_array_equal(labels, stored.partial_fit(new))
    saved = mixture_format.load(out)
    assert saved.covariance_type == "diag" and len(saved.rows) == 6
    for a, b in zip(saved.rows, stored.rows):
        np.testing.assert_array_equal(a, b)
    # the same updates in the pipeline's scaled space
    scaler, km = pipe[0], pipe[-1]
    centres, counts = km.cluster_centers_.copy(), km._counts.astype(np.float64)
    for y, label in zip(scaler.transform(f64(new)), labels):
        counts[label] += 1
        centres[label] += (y - centres[label]) / counts[label]
    raw_centres = centres * scaler.scale_ + scaler.mean_
    np.testing.assert_allclose(np.array(saved.rows[:4], dtype=np.float64), raw_centres, rtol=1e-4, atol=1e-4)


def test_nested_pipeline_and_passthrough(tmp_path):
    X, _ = dataset("iris")
    inner = Pipeline([("skip", "passthrough"), ("scale", StandardScaler())])
    pipe = Pipeline([("front", inner), ("model", make_pipeline(MinMaxScaler(), GaussianMixture(3, random_state=0)))]).fit(f64(X))
    stored = mixture.mixture_from_sklearn(pipe, X)
    res = run_device(stored, X, tmp_path)
    np.testing.assert_allclose(res["score_samples"], pipe.score_samples(f64(X)), rtol=0, atol=1e-4)


def test_pipeline_export_errors():
    X, y = dataset("iris")
    X = f64(X)
    with pytest.raises(ExportError, match=r"step 'pca' \(PCA\) mixes features, which GaussianNB cannot take"):
        mixture.mixture_from_sklearn(make_pipeline(StandardScaler(), PCA(3), GaussianNB()).fit(X, y))
    with pytest.raises(ExportError, match=r"step 'pca' \(PCA\) mixes features, which KMeans cannot take"):
        mixture.mixture_from_sklearn(make_pipeline(PCA(3), KMeans(3, n_init=1)).fit(X))
    with pytest.raises(ExportError, match=r"step 'minmaxscaler' \(MinMaxScaler\) clips its output"):
        mixture.mixture_from_sklearn(make_pipeline(MinMaxScaler(clip=True), GaussianMixture(2)).fit(X))
    with pytest.raises(ExportError, match=r"step 'normalizer' \(Normalizer\) is not supported"):
        mixture.mixture_from_sklearn(make_pipeline(Normalizer(), GaussianMixture(2)).fit(X))
    with pytest.raises(ExportError, match="does not take StandardScaler"):
        mixture.mixture_from_sklearn(make_pipeline(StandardScaler()).fit(X))
    with pytest.raises(ExportError, match="X sets the anomaly threshold"):
        mixture.mixture_from_sklearn(make_pipeline(StandardScaler(), KMeans(2, n_init=1)).fit(X), X)
