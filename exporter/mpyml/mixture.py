"""Gaussian-component models for emlmixture: GaussianMixture, BayesianGaussianMixture, GaussianNB,
EllipticEnvelope, KMeans and MiniBatchKMeans.

`mixture_from_sklearn(estimator, X=None, outlier_percentile=1.0)` lowers a fitted estimator to a
:class:`StoredMixture`: the rows of values the file holds (docs/formats.md, mpyml-mixture) and a
numpy mirror of the device arithmetic (natmods/common/mpyml_mixture.h), bit for bit.
`export(estimator, path, ...)` writes the file (exporter/mpyml/formats/mixture.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ExportError
from .neighbors import check_float32_distances
from .nets import expf, recipf
from .pipeline import PerFeature, Select, is_pipeline, pipeline_from_sklearn

F32, F64 = np.float32, np.float64
KINDS = ("mixture", "naive_bayes", "envelope", "kmeans")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
MAX_WIDTH = 65535
MAX_COUNT = 16777216.0


# ---------------------------------------------------------------- float32 math, as the C core computes it

LOG_POLY = [F32(float.fromhex(h)) for h in ("0x1.c71c72p-3", "0x1.24924ap-2", "0x1.99999ap-2", "0x1.555556p-1")]
LN2_HI, LN2_LO = F32(float.fromhex("0x1.62e4p-1")), F32(float.fromhex("0x1.7f7d1cp-20"))


def logf(x) -> np.ndarray:
    """mpyml_logf: natural log of float32 values with the device's exact operations."""
    x = np.array(x, dtype=F32, ndmin=1)
    out = np.full(x.shape, np.nan, dtype=F32)
    out[x == 0] = -np.inf
    out[x == np.inf] = np.inf
    ok = (x > 0) & (x < np.inf)
    v = x[ok]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sub = v < F32(1.17549435e-38)
        v = np.where(sub, (v * F32(33554432.0)).astype(F32), v)
        bits = v.view(np.uint32)
        e = (bits >> np.uint32(23)).astype(np.int32) - 127 - np.where(sub, 25, 0)
        m = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)).view(F32)
        big = m > F32(1.41421356)
        m = np.where(big, (m * F32(0.5)).astype(F32), m)
        e = e + big
        f = (m - F32(1)).astype(F32)
        s = (f * recipf((F32(2) + f).astype(F32))).astype(F32)
        z = (s * s).astype(F32)
        r = np.full_like(z, LOG_POLY[0])
        for c in LOG_POLY[1:]:
            r = ((z * r).astype(F32) + c).astype(F32)
        r = (z * r).astype(F32)
        hfsq = ((F32(0.5) * f).astype(F32) * f).astype(F32)
        ef = e.astype(F32)
        inner = (hfsq - (s * (hfsq + r).astype(F32)).astype(F32)).astype(F32)
        out[ok] = ((ef * LN2_HI).astype(F32) + ((f - inner).astype(F32) + (ef * LN2_LO).astype(F32)).astype(F32)).astype(F32)
    return out


def sqrtf(x) -> np.ndarray:
    """mpyml_sqrtf of natmods/common/mpyml_math.h: 0 for 0, NaN below 0 and for NaN, +inf for +inf."""
    x = np.array(x, dtype=F32, ndmin=1)
    out = np.where(x == 0, F32(0), np.where(np.isposinf(x), x, F32(np.nan))).astype(F32)
    pos = (x > 0) & np.isfinite(x)
    v = x[pos]
    with np.errstate(over="ignore", under="ignore"):
        tiny = v < F32(1.0e-30)
        v = np.where(tiny, (v * F32(1.8446744074e+19)).astype(F32), v)
        unscale = np.where(tiny, F32(2.3283064365e-10), F32(1.0)).astype(F32)
        y = (np.uint32(0x5F375A86) - (v.view(np.uint32) >> np.uint32(1))).astype(np.uint32).view(F32)
        half = (F32(0.5) * v).astype(F32)
        for _ in range(3):
            y = (y * (F32(1.5) - ((half * y).astype(F32) * y).astype(F32)).astype(F32)).astype(F32)
        root = (v * y).astype(F32)
        corr = ((F32(0.5) * y).astype(F32) * (v - (root * root).astype(F32)).astype(F32)).astype(F32)
        root = (root + corr).astype(F32)
        out[pos] = (root * unscale).astype(F32)
    return out


def logsumexp(v: np.ndarray, proba: bool = False):
    """mpyml_mixture_logsumexp over the last axis of float32 rows: (score, proba or None)."""
    v = np.asarray(v, dtype=F32)
    top = v.max(axis=1)
    total = np.zeros(len(v), dtype=F32)
    for k in range(v.shape[1]):
        total = (total + expf((v[:, k] - top).astype(F32))).astype(F32)
    score = (top + logf(total)).astype(F32)
    if not proba:
        return score, None
    inv = recipf(total)
    return score, (expf((v - top[:, None]).astype(F32)) * inv[:, None]).astype(F32)


# ---------------------------------------------------------------- the stored model and its mirror


@dataclass
class StoredMixture:
    """What an mpyml-mixture file holds. `rows`: the values section, float32 (mixture, kmeans) or
    float64 (naive_bayes, envelope) arrays in file order. `threshold`: mixture: score_samples below
    it is an outlier (float32, or None); envelope: scikit-learn's offset_ (float64)."""

    kind: str
    covariance_type: str
    n_features: int
    n_components: int
    rows: list = field(default_factory=list)
    threshold: float | None = None
    classes: list | None = None

    @property
    def dtype(self):
        return F64 if self.kind in ("naive_bayes", "envelope") else F32

    def ram_bytes(self) -> int:
        """Bytes of the block emlmixture allocates at load (mpyml_mixture_bytes)."""
        items = sum(len(r) for r in self.rows) + self.n_features + self.n_components
        return items * np.dtype(self.dtype).itemsize

    # -- the parts of `rows`
    def _part(self, start: int, count: int) -> np.ndarray:
        return np.array(self.rows[start:start + count], dtype=self.dtype)

    def _rows_checked(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=F32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError("X: expected shape (n, %d), got %s" % (self.n_features, X.shape))
        return X

    def _gmm_log_probs(self, X) -> np.ndarray:
        X = self._rows_checked(X)
        k_n, d, cov = self.n_components, self.n_features, self.covariance_type
        means = self._part(0, k_n)
        n_prec = 1 if cov in ("tied", "spherical") else k_n
        prec = self.rows[k_n:k_n + n_prec]
        consts = self.rows[k_n + n_prec]
        out = np.empty((len(X), k_n), dtype=F32)
        for k in range(k_n):
            c = (X - means[k]).astype(F32)
            q = np.zeros(len(X), dtype=F32)
            if cov in ("full", "tied"):
                u = prec[k if cov == "full" else 0]
                at = 0
                for j in range(d):
                    y = np.zeros(len(X), dtype=F32)
                    for i in range(j + 1):
                        y = (y + (c[:, i] * u[at + i]).astype(F32)).astype(F32)
                    at += j + 1
                    q = (q + (y * y).astype(F32)).astype(F32)
            elif cov == "diag":
                p = prec[k]
                for i in range(d):
                    q = (q + ((c[:, i] * c[:, i]).astype(F32) * p[i]).astype(F32)).astype(F32)
            else:
                for i in range(d):
                    q = (q + (c[:, i] * c[:, i]).astype(F32)).astype(F32)
                q = (q * prec[0][k]).astype(F32)
            out[:, k] = (consts[k] - (F32(0.5) * q).astype(F32)).astype(F32)
        return out

    def _nb_jll(self, X) -> np.ndarray:
        X = self._rows_checked(X).astype(F64)
        k_n, d = self.n_components, self.n_features
        means, inv_var = self._part(0, k_n), self._part(k_n, k_n)
        prior, norm = self.rows[2 * k_n], self.rows[2 * k_n + 1]
        out = np.empty((len(X), k_n), dtype=F64)
        for k in range(k_n):
            s = np.zeros(len(X))
            for i in range(d):
                diff = X[:, i] - means[k, i]
                s = s + diff * diff * inv_var[k, i]
            out[:, k] = prior[k] + (norm[k] - 0.5 * s)
        return out

    def _kmeans_sq_distances(self, X) -> np.ndarray:
        X = self._rows_checked(X)
        centres = self._part(0, self.n_components)
        out = np.empty((len(X), self.n_components), dtype=F32)
        for k in range(self.n_components):
            q = np.zeros(len(X), dtype=F32)
            for i in range(self.n_features):
                diff = (X[:, i] - centres[k, i]).astype(F32)
                term = (diff * diff).astype(F32)
                if self.covariance_type == "diag":
                    term = (term * self.rows[self.n_components + 1][i]).astype(F32)
                q = (q + term).astype(F32)
            out[:, k] = q
        return out

    def mahalanobis(self, X) -> np.ndarray:
        """envelope: squared Mahalanobis distances (float64, the device's order)."""
        self._require("envelope")
        X = self._rows_checked(X).astype(F64)
        d = self.n_features
        loc, prec = self.rows[0], self._part(1, d)
        c = X - loc
        total = np.zeros(len(X))
        for j in range(d):
            t = np.zeros(len(X))
            for i in range(d):
                t = t + c[:, i] * prec[i, j]
            total = total + t * c[:, j]
        return total

    def _require(self, *kinds):
        if self.kind not in kinds:
            raise TypeError("not available for a %s model" % self.kind)

    def score_samples(self, X) -> np.ndarray:
        """mixture: log-likelihood per row (float32); envelope: -mahalanobis (as float32)."""
        self._require("mixture", "envelope")
        if self.kind == "envelope":
            return (-self.mahalanobis(X)).astype(F32)
        return logsumexp(self._gmm_log_probs(X))[0]

    def decision_function(self, X) -> np.ndarray:
        self._require("envelope")
        return (-self.mahalanobis(X) - self.threshold).astype(F32)

    def predict(self, X) -> np.ndarray:
        """Component, class index, centre (first of equals) or +1 / -1 (envelope) per row."""
        if self.kind == "envelope":
            return np.where(-self.mahalanobis(X) - self.threshold >= 0, 1, -1)
        if self.kind == "kmeans":
            return np.argmin(self._kmeans_sq_distances(X), axis=1)
        if self.kind == "naive_bayes":
            return np.argmax(self._nb_jll(X), axis=1)
        return np.argmax(self._gmm_log_probs(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        self._require("mixture", "naive_bayes")
        if self.kind == "mixture":
            return logsumexp(self._gmm_log_probs(X), proba=True)[1]
        jll = self._nb_jll(X)
        diff = jll - jll.max(axis=1, keepdims=True)
        return logsumexp(np.where(diff < -100.0, -100.0, diff).astype(F32), proba=True)[1]

    def is_outlier(self, X) -> np.ndarray:
        if self.kind == "envelope":
            return self.predict(X) == -1
        self._require("mixture")
        if self.threshold is None:
            raise TypeError("is_outlier: the model has no threshold (export a mixture with X to store one)")
        return self.score_samples(X) < F32(self.threshold)

    def transform(self, X) -> np.ndarray:
        """kmeans: distance to every centre (float32)."""
        self._require("kmeans")
        d2 = self._kmeans_sq_distances(X)
        return sqrtf(d2.ravel()).reshape(d2.shape)

    def partial_fit(self, X) -> np.ndarray:
        """kmeans: the device's online update, row by row (changes rows); returns the centres chosen."""
        self._require("kmeans")
        X = self._rows_checked(X)
        k_n = self.n_components
        labels = np.empty(len(X), dtype=np.int64)
        for r, x in enumerate(X):
            best = int(self.predict(x[None, :])[0])
            labels[r] = best
            counts = self.rows[k_n]
            if counts[best] >= MAX_COUNT:
                continue
            counts[best] = F32(counts[best] + F32(1))
            step = recipf(counts[best])[()]
            centre = self.rows[best]
            self.rows[best] = (centre + ((x - centre).astype(F32) * step).astype(F32)).astype(F32)
        return labels


# ---------------------------------------------------------------- from scikit-learn


def _finite(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=F64)
    if not np.all(np.isfinite(values)):
        raise ExportError("%s has NaN or infinite values" % name)
    return values


def _check_size(d: int, k: int):
    if not (1 <= d <= MAX_WIDTH and 1 <= k <= MAX_WIDTH):
        raise ExportError("emlmixture takes 1..65535 features and components, got %d and %d" % (d, k))


def _finite32(name: str, values) -> np.ndarray:
    out = _finite(name, values).astype(F32)
    if not np.all(np.isfinite(out)):
        raise ExportError("%s overflows float32" % name)
    return out


class Fold:
    """The transformer steps in front of a Pipeline's final estimator as one affine map
    y = A @ x + b (float64; A of shape (n_out, n_features)), folded into the estimator's parameters
    on the host. `columns`: when every transformed feature is one raw feature scaled (scalers and
    column selection), the raw column of each (increasing) and `scale` its factor; None when a step
    mixes features (`mixing`: the name and class of the first such step, for error messages)."""

    def __init__(self, n_features: int, steps, classes: dict):
        self.n_features = n_features
        A, b = np.eye(n_features), np.zeros(n_features)
        self.mixing = None
        for step in steps:
            if isinstance(step, PerFeature):
                if step.clip is not None:
                    raise ExportError("step '%s' (%s) clips its output (clip=True), which the model's parameters "
                                      "cannot take" % (step.name, classes[step.name]))
                a, shift = step.affine64()
                A, b = a[:, None] * A, a * b + shift
            elif isinstance(step, Select):
                A, b = A[step.indices], b[step.indices]
            else:
                A, b = step.weights @ A, step.weights @ b + step.bias
                self.mixing = self.mixing or (step.name, classes[step.name])
        self.A, self.b = A, b
        nonzero = A != 0
        self.columns = self.scale = None
        if np.all(nonzero.sum(axis=1) == 1):
            columns = np.argmax(nonzero, axis=1)
            if np.all(np.diff(columns) > 0):
                self.columns, self.scale = columns, A[np.arange(len(A)), columns]
        if self.columns is None and np.linalg.matrix_rank(A) < len(A):
            raise ExportError("the steps in front of the estimator map %d features onto %d dependent ones: "
                              "no point of the raw features reaches every mean" % (n_features, len(A)))
        if self.columns is not None:
            self.mixing = None

    @property
    def n_out(self) -> int:
        return len(self.A)

    def point(self, y) -> np.ndarray:
        """A raw point m with A @ m + b == y (per-feature: 0 in the unused columns)."""
        y = np.asarray(y, dtype=F64) - self.b
        if self.columns is None:
            return np.linalg.pinv(self.A) @ y
        m = np.zeros(self.n_features)
        m[self.columns] = y / self.scale
        return m

    def per_feature(self, values) -> np.ndarray:
        """Per-feature values of the transformed features at their raw columns (0 elsewhere)."""
        out = np.zeros(self.n_features)
        out[self.columns] = values
        return out

    def quadratic(self, P) -> np.ndarray:
        """A.T @ P @ A: the (n_features, n_features) matrix of y.T P y in raw coordinates."""
        return self.A.T @ np.asarray(P, dtype=F64) @ self.A

    def factor(self, U) -> np.ndarray:
        """Upper-triangular T (n_features square) with T @ T.T == A.T @ U @ U.T @ A."""
        U = np.asarray(U, dtype=F64)
        d = self.n_features
        T = np.zeros((d, d))
        if self.columns is not None:
            T[np.ix_(self.columns, self.columns)] = self.scale[:, None] * U
            return T
        # T T^T = M M^T with M = A^T U: the QR of M reversed gives a lower factor; reversing it back
        # gives an upper one.
        R = np.linalg.qr((self.A.T @ U)[::-1].T, mode="r")
        T[:, :R.shape[0]] = R.T
        return T[::-1, ::-1]


def _triangle_row(u) -> np.ndarray:
    return _finite32("precisions_cholesky_", np.concatenate([u[:j + 1, j] for j in range(len(u))]))


def _from_gaussian_mixture(est, fold: Fold | None) -> StoredMixture:
    cov = est.covariance_type
    means = _finite("means_", est.means_)
    k_n, d = means.shape
    chol = _finite("precisions_cholesky_", est.precisions_cholesky_)
    consts = np.array([est._estimate_weighted_log_prob(means[k:k + 1])[0, k] for k in range(k_n)])
    if fold is None:
        rows = [_finite32("means_", m) for m in means]
        if cov in ("full", "tied"):
            rows += [_triangle_row(u) for u in (chol if cov == "full" else chol[None])]
        elif cov == "diag":
            rows += [_finite32("precisions_cholesky_", p * p) for p in chol]
        else:
            rows.append(_finite32("precisions_cholesky_", chol * chol))
    else:
        d = fold.n_features
        rows = [_finite32("means_ (folded)", fold.point(m)) for m in means]
        if fold.columns is not None and cov in ("diag", "spherical"):
            per_feature = chol if cov == "diag" else chol[:, None] * np.ones(fold.n_out)
            rows += [_finite32("precisions_cholesky_ (folded)", fold.per_feature((fold.scale * p) ** 2)) for p in per_feature]
            cov = "diag"
        else:
            if cov == "diag":
                mats = [np.diag(p) for p in chol]
            elif cov == "spherical":
                mats = [p * np.eye(fold.n_out) for p in chol]
            else:
                mats = chol if cov == "full" else chol[None]
            rows += [_triangle_row(fold.factor(u)) for u in mats]
            cov = "tied" if cov == "tied" else "full"
    _check_size(d, k_n)
    rows.append(_finite32("the log-likelihood constants", consts))
    return StoredMixture("mixture", cov, d, k_n, rows)


def _per_feature_only(fold: Fold | None, model: str, why: str):
    if fold is not None and fold.columns is None:
        raise ExportError("step '%s' (%s) mixes features, which %s cannot take (%s); put it before the pipeline "
                          "(transform on the device) or use GaussianMixture" % (*fold.mixing, model, why))


def _from_gaussian_nb(est, fold: Fold | None) -> StoredMixture:
    _per_feature_only(fold, "GaussianNB", "its variances are per feature")
    theta, var = _finite("theta_", est.theta_), _finite("var_", est.var_)
    k_n, d = theta.shape
    if np.any(var <= 0):
        raise ExportError("var_ has zero variances")
    class_prior = _finite("class_prior_", est.class_prior_)
    if np.any(class_prior <= 0):
        # log(0) = -inf, which the file cannot hold; scikit-learn never predicts such a class
        raise ExportError("class_prior_ holds a zero prior (class %r): its log is -inf, which the device's float32 "
                          "parameters cannot hold; drop the class or give it a small prior"
                          % (est.classes_[int(np.argmin(class_prior))].item(),))
    prior = np.log(class_prior)
    norm = np.array([-0.5 * np.sum(np.log(2.0 * np.pi * var[k])) for k in range(k_n)])
    inv_var = 1.0 / var
    if fold is not None:
        d = fold.n_features
        theta = [fold.point(t) for t in theta]
        inv_var = [fold.per_feature(fold.scale * fold.scale * v) for v in inv_var]
    _check_size(d, k_n)
    rows = list(theta) + list(inv_var) + [prior, _finite("the normalisers", norm)]
    return StoredMixture("naive_bayes", "diag", d, k_n, [_finite("GaussianNB's parameters", r) for r in rows],
                         classes=list(est.classes_))


def _from_elliptic_envelope(est, fold: Fold | None) -> StoredMixture:
    loc = _finite("location_", est.location_)
    prec = _finite("precision_", est.get_precision())
    if fold is not None:
        loc, prec = _finite("location_ (folded)", fold.point(loc)), _finite("precision_ (folded)", fold.quadratic(prec))
    d = len(loc)
    _check_size(d, 1)
    return StoredMixture("envelope", "full", d, 1, [loc] + list(prec), threshold=float(est.offset_))


def _from_kmeans(est, fold: Fold | None) -> StoredMixture:
    _per_feature_only(fold, type(est).__name__, "its distances are euclidean")
    centres = _finite("cluster_centers_", est.cluster_centers_)
    # the device takes differences and squares them in raw feature units (a folded scaler weights the squares)
    check_float32_distances(centres if fold is None else np.array([fold.point(c) for c in centres]), "euclidean",
                            "cluster_centers_")
    k_n, d = centres.shape
    counts = getattr(est, "_counts", None)
    if counts is None:
        counts = np.bincount(est.labels_, minlength=k_n)
    counts = np.minimum(np.round(np.asarray(counts, dtype=F64)), MAX_COUNT).astype(F32)
    if fold is None:
        _check_size(d, k_n)
        return StoredMixture("kmeans", "spherical", d, k_n, [_finite32("cluster_centers_", c) for c in centres] + [counts])
    _check_size(fold.n_features, k_n)
    rows = [_finite32("cluster_centers_ (folded)", fold.point(c)) for c in centres]
    weights = _finite32("the feature weights", fold.per_feature(fold.scale * fold.scale))
    return StoredMixture("kmeans", "diag", fold.n_features, k_n, rows + [counts, weights])


def _split_pipeline(pipeline):
    """(Fold of the transformer steps or None, name, final estimator) of a fitted Pipeline."""
    from sklearn.pipeline import Pipeline

    front, (name, final) = [], pipeline.steps[-1]
    while True:
        front += list(pipeline.steps[:-1])
        name, final = pipeline.steps[-1]
        if not is_pipeline(final):
            break
        pipeline = final
    classes = {}

    def collect(steps):
        for step_name, est in steps:
            if is_pipeline(est):
                collect(est.steps)
            classes[step_name] = type(est).__name__

    collect(front)
    transformers = [(n, e) for n, e in front if not (e is None or (isinstance(e, str) and e == "passthrough"))]
    if not transformers:
        return None, name, final
    ir = pipeline_from_sklearn(Pipeline(transformers))
    fold = Fold(ir.n_features, ir.steps, classes)
    n_in = getattr(final, "n_features_in_", None)
    if n_in is not None and n_in != fold.n_out:
        raise ExportError("step '%s' (%s) takes %d features but the step before it gives %d"
                          % (name, type(final).__name__, n_in, fold.n_out))
    return fold, name, final


def mixture_from_sklearn(estimator, X=None, outlier_percentile: float = 1.0) -> StoredMixture:
    """The StoredMixture of a fitted GaussianMixture, BayesianGaussianMixture, GaussianNB,
    EllipticEnvelope, KMeans or MiniBatchKMeans. For the mixtures, X (the training rows, (n,
    n_features)) sets the anomaly threshold: the `outlier_percentile` percentile of their
    score_samples as the device computes them; without X there is no threshold.
    `estimator` may also be a fitted Pipeline ending in one of these, its steps folded into the
    parameters (Fold; docs/formats.md, mpyml-mixture "Pipelines"); X is then the raw rows.
    Raises ExportError for other estimators and steps, unfitted ones and NaN/infinite parameters."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.covariance import EllipticEnvelope
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
    from sklearn.naive_bayes import GaussianNB

    fold = None
    if is_pipeline(estimator):
        fold, _, estimator = _split_pipeline(estimator)
    name = type(estimator).__name__
    try:
        if isinstance(estimator, (GaussianMixture, BayesianGaussianMixture)):
            stored = _from_gaussian_mixture(estimator, fold)
        elif isinstance(estimator, GaussianNB):
            stored = _from_gaussian_nb(estimator, fold)
        elif isinstance(estimator, EllipticEnvelope):
            stored = _from_elliptic_envelope(estimator, fold)
        elif isinstance(estimator, (KMeans, MiniBatchKMeans)):
            stored = _from_kmeans(estimator, fold)
        else:
            raise ExportError("emlmixture does not take %s" % name)
    except AttributeError as e:
        raise ExportError("%s is not fitted (%s)" % (name, e)) from None
    set_threshold(stored, X, outlier_percentile, name)
    return stored


def set_threshold(stored: StoredMixture, X=None, outlier_percentile: float = 1.0, name: str = "this model") -> None:
    """For the mixtures, sets the anomaly threshold to the `outlier_percentile` percentile of the
    device's score_samples of X (raw training rows, (n, n_features)); no threshold without X."""
    if X is None:
        return
    if stored.kind != "mixture":
        raise ExportError("X sets the anomaly threshold of GaussianMixture models only, not %s" % name)
    if not 0.0 <= outlier_percentile <= 100.0:
        raise ExportError("outlier_percentile must be 0..100, got %r" % outlier_percentile)
    scores = stored.score_samples(X)
    stored.threshold = float(F32(np.percentile(scores.astype(F64), outlier_percentile)))


def export(estimator, path, X=None, outlier_percentile: float = 1.0) -> StoredMixture:
    """Writes a fitted estimator (see mixture_from_sklearn) to an mpyml-mixture file; returns
    its StoredMixture (the numpy mirror of the device)."""
    from .formats import mixture as mixture_format

    stored = mixture_from_sklearn(estimator, X, outlier_percentile)
    mixture_format.save(stored, path)
    return stored
