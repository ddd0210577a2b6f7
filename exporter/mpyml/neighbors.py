"""k-nearest neighbours: the intermediate representation, its lowering and the numpy reference.

A fitted ``KNeighborsClassifier`` or ``NearestNeighbors`` is converted once into
a :class:`Neighbors` (training rows, class indices, metric, weights, k).
:func:`lower` makes the :class:`StoredNeighbors` that the model file holds and
the device searches: items cast to the feature dtype and the novelty threshold
learned from the training rows. :class:`StoredNeighbors` also carries the numpy
reference of the device's arithmetic (natmods/common/mpyml_neighbors.h): exact
integer distances for int16 items, float32 sums in feature order for float32
items, the same square root and reciprocal (Newton iterations, no libm), ties
to the lower item index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ExportError
from .labels import check_columns, feature_names_of

CLASSIFIER = "classifier"
NEIGHBORS = "neighbors"
FEATURE_DTYPES = ("int16", "float32")
METRICS = ("euclidean", "manhattan", "chebyshev")
WEIGHTS = ("uniform", "distance")

# Limits of the device storage (natmods/common/mpyml_neighbors.h).
MAX_FEATURES = 65535
MAX_ITEMS = 2**24
MAX_K = 65535
MAX_CLASSES = 65535
INT16_MIN, INT16_MAX = -32768, 32767


@dataclass
class Neighbors:
    kind: str  # CLASSIFIER or NEIGHBORS
    items: np.ndarray  # float64 (n_items, n_features): the training rows
    labels: np.ndarray | None  # int64 class index per item (classifiers)
    metric: str
    weights: str
    k: int
    classes: np.ndarray | None = None  # the estimator's classes_, which labels index
    feature_names: list | None = None  # the estimator's feature_names_in_, as str


def _metric_name(estimator) -> str:
    metric = getattr(estimator, "effective_metric_", estimator.metric)
    params = dict(getattr(estimator, "effective_metric_params_", None) or {})
    if callable(metric):
        raise ExportError("callable metrics are not supported; use euclidean, manhattan or chebyshev")
    if metric == "minkowski":
        p = params.pop("p", getattr(estimator, "p", 2))
        metric = {1: "manhattan", 2: "euclidean", np.inf: "chebyshev"}.get(p, "minkowski p=%s" % p)
    aliases = {"l2": "euclidean", "l1": "manhattan", "cityblock": "manhattan", "infinity": "chebyshev"}
    metric = aliases.get(metric, metric)
    if metric not in METRICS or params.get("w") is not None:
        raise ExportError("metric %r is not supported; use euclidean, manhattan or chebyshev" % (metric,))
    return metric


def neighbors_from_sklearn(estimator) -> Neighbors:
    """Converts a fitted KNeighborsClassifier or NearestNeighbors."""
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.utils.validation import check_is_fitted


    check_is_fitted(estimator)
    items = np.asarray(estimator._fit_X, dtype=np.float64)
    if items.ndim != 2:
        raise ExportError("precomputed distances cannot be exported: the device needs the training rows")
    metric = _metric_name(estimator)
    k = int(estimator.n_neighbors)
    if isinstance(estimator, KNeighborsClassifier):
        if estimator.outputs_2d_:
            raise ExportError("only single-output classifiers are supported")
        if estimator.weights not in WEIGHTS:
            raise ExportError("weights %r is not supported; use 'uniform' or 'distance'" % (estimator.weights,))
        return Neighbors(CLASSIFIER, items, np.asarray(estimator._y, dtype=np.int64), metric, estimator.weights, k,
                         np.asarray(estimator.classes_), feature_names_of(estimator))
    if isinstance(estimator, NearestNeighbors):
        return Neighbors(NEIGHBORS, items, None, metric, "uniform", k, feature_names=feature_names_of(estimator))
    raise ExportError("%s is not a k-nearest-neighbours estimator" % type(estimator).__name__)


# ---------------------------------------------------------------- float32 helpers, as the C core computes them


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _bits(x) -> np.ndarray:
    return _f32(x).view(np.uint32)


def _from_bits(bits) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def _pow2(e) -> np.ndarray:
    return _from_bits((np.asarray(e, dtype=np.int64) + 127).astype(np.uint32) << np.uint32(23))


def _scale(x, e) -> np.ndarray:
    e = np.asarray(e, dtype=np.int64)
    half = np.trunc(e / 2).astype(np.int64)  # C's e / 2 rounds toward zero
    return _f32(_f32(x) * _pow2(half)) * _pow2(e - half)


def _mantissa_exponent(x: np.ndarray):
    """(m in [1, 2), e) of positive finite float32s, subnormals made normal first (as the C core)."""
    bits = _bits(x).copy()
    sub = bits < 0x00800000
    bits[sub] = _bits(_from_bits(bits[sub]) * np.float32(16777216.0))
    e = (bits >> np.uint32(23)).astype(np.int64) - 127 - np.where(sub, 24, 0)
    m = _from_bits((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000))
    return m, e


def recip(x) -> np.ndarray:
    """mpyml_neighbors_recip: 1/x in float32 without division (within 1 ulp)."""
    x = _f32(x).reshape(-1)
    out = np.empty_like(x)
    bits = _bits(x)
    sign, mag = bits & np.uint32(0x80000000), bits & np.uint32(0x7FFFFFFF)
    special = (mag >= 0x7F800000) | (mag == 0)
    out[mag > 0x7F800000] = x[mag > 0x7F800000]
    out[mag == 0x7F800000] = _from_bits(sign[mag == 0x7F800000])
    out[mag == 0] = _from_bits(sign[mag == 0] | np.uint32(0x7F800000))
    normal = ~special
    with np.errstate(over="ignore", under="ignore"):
        m, e = _mantissa_exponent(_from_bits(mag[normal]))
        r = _f32(np.float32(1.4117647) - np.float32(0.47058824) * m)
        for _ in range(3):
            r = _f32(r + r * _f32(np.float32(1.0) - m * r))
        out[normal] = _from_bits(_bits(_scale(r, -e)) | sign[normal])
    return out


def sqrt(x) -> np.ndarray:
    """mpyml_neighbors_sqrt: sqrt in float32 without libm (within 1 ulp)."""
    x = _f32(x).reshape(-1)
    out = x.copy()
    bits = _bits(x)
    passthrough = (bits == 0) | (bits == 0x80000000) | (bits == 0x7F800000) | ((bits & np.uint32(0x7FFFFFFF)) > 0x7F800000)
    negative = ~passthrough & ((bits & np.uint32(0x80000000)) != 0)
    out[negative] = np.float32(np.nan)
    normal = ~passthrough & ~negative
    with np.errstate(over="ignore", under="ignore"):
        m, e = _mantissa_exponent(x[normal])
        odd = (e & 1) == 1
        m = np.where(odd, m * np.float32(2.0), m).astype(np.float32)
        e = np.where(odd, e - 1, e)
        y = _f32(np.float32(1.2) - np.float32(0.2) * m)
        for _ in range(5):
            y = _f32(y * _f32(np.float32(1.5) - np.float32(0.5) * m * y * y))
        s = _f32(m * y)
        s = _f32(s + np.float32(0.5) * y * _f32(m - s * s))
        out[normal] = _scale(s, e // 2)
    return out


# ---------------------------------------------------------------- the stored model


@dataclass
class StoredNeighbors:
    """What the model file holds and the device searches."""

    kind: str
    dtype: str  # 'int16' or 'float32'
    metric: str
    weights: str
    k: int
    items: np.ndarray  # (n_items, n_features) int64 (int16 values) or float32
    labels: np.ndarray | None  # int64 per item, or None (NearestNeighbors)
    n_classes: int  # 0 for NearestNeighbors
    threshold: np.float32 | None = None  # novelty: score > threshold is an outlier
    classes: np.ndarray | None = None  # class labels (the estimator's classes_), which `labels` index
    feature_names: list | None = None  # the estimator's feature_names_in_ (str), or None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_features(self) -> int:
        return self.items.shape[1]

    def ram_bytes(self, max_items: int | None = None, max_k: int | None = None) -> int:
        """Bytes of emlneighbors' item block for emlneighbors.new(max_items, n_features, max_k)."""
        max_items = self.n_items if max_items is None else max_items
        max_k = self.k if max_k is None else max_k
        itemsize = 4 if self.dtype == "float32" else 2

        def align8(n):
            return (n + 7) & ~7

        return 8 * max_k + align8(4 * max_k) + align8(itemsize * self.n_features * max_items) + align8(2 * max_items)

    def cast_features(self, X) -> np.ndarray:
        """Rows as the device receives them: int16 values (as int64) or float32. A DataFrame must
        have the columns the estimator was fitted with, in that order (ValueError otherwise)."""
        check_columns(X, self.feature_names)
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[None, :]
        if self.dtype == "int16":
            return _whole_int16(X, "X")
        return X.astype(np.float32)

    def keys(self, X, items: np.ndarray | None = None) -> np.ndarray:
        """Distance keys (n_rows, n_items) as the device compares them (uint64)."""
        X = self.cast_features(X)
        items = self.items if items is None else items
        if self.dtype == "int16":
            acc = np.zeros((len(X), len(items)), dtype=np.uint64)
            for f in range(self.n_features):
                d = np.abs(X[:, None, f] - items[None, :, f]).astype(np.uint64)
                if self.metric == "euclidean":
                    acc += d * d
                elif self.metric == "manhattan":
                    acc += d
                else:
                    np.maximum(acc, d, out=acc)
            return acc
        acc = np.zeros((len(X), len(items)), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            for f in range(self.n_features):
                d = np.abs(X[:, None, f] - items[None, :, f]).astype(np.float32)
                if self.metric == "euclidean":
                    acc = _f32(acc + _f32(d * d))
                elif self.metric == "manhattan":
                    acc = _f32(acc + d)
                else:
                    acc = np.where(~(d <= acc), d, acc).astype(np.float32)
        return (acc.view(np.uint32) & np.uint32(0x7FFFFFFF)).astype(np.uint64)

    def distance(self, keys) -> np.ndarray:
        """The float32 distance a key stands for (mpyml_neighbors_distance)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self.dtype == "int16":
            v = keys.astype(np.float32)
        else:
            v = _from_bits(keys.astype(np.uint32))
        if self.metric == "euclidean":
            return sqrt(v).reshape(keys.shape)
        return v

    def kneighbors(self, X, exclude_self: bool = False):
        """(distances float32, item indices) of the k nearest items per row, nearest first,
        equal distances in item order. exclude_self: row i is item i and skips itself."""
        X = self.cast_features(X)
        dist, index = [], []
        for start in range(0, len(X), 256):
            keys = self.keys(X[start:start + 256])
            if exclude_self:
                rows = np.arange(len(keys))
                keys[rows, start + rows] = np.iinfo(np.uint64).max
            order = np.argsort(keys, axis=1, kind="stable")[:, : self.k]
            index.append(order)
            dist.append(self.distance(np.take_along_axis(keys, order, axis=1)))
        return np.concatenate(dist), np.concatenate(index)

    def score(self, X) -> np.ndarray:
        """Novelty score: distance to the k-th nearest item (float32)."""
        return self.kneighbors(X)[0][:, -1]

    def is_outlier(self, X) -> np.ndarray:
        if self.threshold is None:
            raise ValueError("this model has no novelty threshold")
        return self.score(X) > self.threshold

    def predict(self, X) -> np.ndarray:
        """Class label per row, as scikit-learn's predict (classes[predict_index(X)])."""
        index = self.predict_index(X)
        return index if self.classes is None else np.asarray(self.classes)[index]

    def predict_index(self, X) -> np.ndarray:
        """Class index per row, what the device's predict returns (mpyml_neighbors_vote): float32 class
        totals, and with distance weights scikit-learn's float64 sums for the classes within the
        error bound of the best total."""
        if self.labels is None:
            raise ValueError("a NearestNeighbors model has no labels to predict")
        X = self.cast_features(X)
        dist, index = self.kneighbors(X)
        out = np.empty(len(X), dtype=np.int64)
        for r in range(len(X)):
            labels = self.labels[index[r]]
            zero = dist[r] == 0
            if self.weights == "distance":
                w = zero.astype(np.float32) if zero.any() else recip(dist[r])
            else:
                w = np.ones(self.k, dtype=np.float32)
            totals = {}  # label: float32 total, in the order of each class's nearest neighbour
            for i, label in enumerate(labels):
                totals[int(label)] = np.float32(totals.get(int(label), np.float32(0.0)) + w[i])
            best_label, best_total, runner_up = 0, np.float32(-1.0), np.float32(-1.0)
            for label, total in totals.items():
                if total > best_total or (total == best_total and label < best_label):
                    best_label, best_total, runner_up = label, total, best_total
                elif total > runner_up:
                    runner_up = total
            out[r] = best_label
            if self.weights != "distance" or zero.any():
                continue
            terms = self.k + 8 + (self.n_features if self.dtype == "float32" else 0)
            slack = np.float32(terms) * np.float32(1.1920929e-7)
            if not (best_total - runner_up <= slack * (best_total + runner_up)):
                continue
            weights64 = self._weights64(X[r], index[r])
            exact_label, exact_best = best_label, -1.0
            for label, total in totals.items():
                if not (best_total - total <= slack * (best_total + total)):
                    continue
                # numpy's pairwise sum of the row of k terms, zeros for the other classes, as
                # scikit-learn's weighted_mode
                total64 = float(np.sum(np.where(labels == label, weights64, 0.0)))
                if total64 > exact_best or (total64 == exact_best and label < exact_label):
                    exact_label, exact_best = label, total64
            out[r] = exact_label
        return out

    def _weights64(self, x, index) -> np.ndarray:
        """scikit-learn's float64 weights 1/distance of x's neighbours `index` (mpyml_neighbors_term64):
        int16 items: the exact integer distances (euclidean: correctly rounded square roots); float32
        items: float64 sums of |x - item| (manhattan) or of squares then the square root (euclidean),
        or maxima (chebyshev), in feature order, as scikit-learn's DistanceMetric (its kd_tree and
        ball_tree searches; the brute search sums euclidean distances by matrix products)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.dtype == "int16":
                d = self.keys(x[None, :], self.items[index])[0].astype(np.float64)
                if self.metric == "euclidean":
                    d = np.sqrt(d)
            else:
                diff = np.abs(x.astype(np.float64)[None, :] - self.items[index].astype(np.float64))
                d = np.zeros(len(index))
                for f in range(self.n_features):
                    if self.metric == "euclidean":
                        d = d + diff[:, f] * diff[:, f]
                    elif self.metric == "manhattan":
                        d = d + diff[:, f]
                    else:
                        d = np.where(diff[:, f] > d, diff[:, f], d)
                if self.metric == "euclidean":
                    d = np.sqrt(d)
            return np.where((d > 0) & np.isfinite(d), 1.0 / d, 0.0)


def _whole_int16(X, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)) or np.any(X != np.round(X)) or X.min(initial=0) < INT16_MIN or X.max(initial=0) > INT16_MAX:
        raise ExportError("%s: feature_dtype='int16' needs whole numbers in -32768..32767 (scale the features, "
                          "e.g. by a constant per feature, and round them before fitting)" % what)
    return X.astype(np.int64)


FLOAT32_MAX = float(np.finfo(np.float32).max)
DISTANCE_FLOOR = 2.0**-102  # 24 bits above float32's smallest normal (2**-126): below it distances lose digits or become 0


def check_float32_distances(points, metric: str, what: str) -> None:
    """ExportError when float32 distances between `points` ((n, n_features), float64), as the device sums them
    (euclidean: squared differences), would overflow float32 or lie wholly below DISTANCE_FLOOR, where float32
    loses their digits: k-NN and k-means would then tie or decide differently from scikit-learn's float64."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return
    span = points.max(axis=0) - points.min(axis=0)
    largest = {"euclidean": np.sum(span * span), "manhattan": np.sum(span)}.get(metric, np.max(span))
    if largest > FLOAT32_MAX:
        raise ExportError("%s: their %s distances reach %.3g (summed as %s), beyond float32's 3.4e38; the device "
                          "computes them in float32: rescale the features" % (
                              what, metric, largest, "squares" if metric == "euclidean" else "values"))
    if 0 < largest < DISTANCE_FLOOR:
        raise ExportError("%s: their %s distances%s are at most %.3g, below 2**-102, where the device's float32 "
                          "arithmetic loses their digits; rescale the features" % (
                              what, metric, " (squared)" if metric == "euclidean" else "", largest))


def lower(ir: Neighbors, dtype: str = "int16", novelty_percentile: float | None = 99.0) -> StoredNeighbors:
    """The stored model for a feature dtype; the novelty threshold is the given percentile of the
    training rows' scores (each row's k-th nearest other item), None for no threshold."""
    if dtype not in FEATURE_DTYPES:
        raise ExportError("feature_dtype must be one of %s, got %r" % (FEATURE_DTYPES, dtype))
    n_items, n_features = ir.items.shape
    if not 1 <= n_features <= MAX_FEATURES:
        raise ExportError("%d features: the device supports 1..%d" % (n_features, MAX_FEATURES))
    if not 1 <= ir.k <= min(n_items, MAX_K):
        raise ExportError("k=%d must be 1..min(n_items=%d, %d)" % (ir.k, n_items, MAX_K))
    if n_items > MAX_ITEMS:
        raise ExportError("%d items: the device supports at most %d" % (n_items, MAX_ITEMS))
    if dtype == "int16":
        items = _whole_int16(ir.items, "training rows")
    else:
        items = ir.items.astype(np.float32)
        check_float32_distances(ir.items, ir.metric, "the training rows")
    n_classes = 0
    if ir.kind == CLASSIFIER:
        n_classes = len(ir.classes)
        if n_classes > MAX_CLASSES:
            raise ExportError("%d classes: the device supports at most %d" % (n_classes, MAX_CLASSES))
    stored = StoredNeighbors(ir.kind, dtype, ir.metric, ir.weights, ir.k, items, ir.labels, n_classes,
                             classes=ir.classes, feature_names=ir.feature_names)
    if novelty_percentile is not None:
        if not 0 <= novelty_percentile <= 100:
            raise ExportError("novelty_percentile must be 0..100, got %r" % (novelty_percentile,))
        if n_items <= ir.k:
            raise ExportError("a novelty threshold needs more than k=%d training rows" % ir.k)
        stored.threshold = np.float32(np.percentile(training_scores(stored), novelty_percentile))
    return stored


def training_scores(stored: StoredNeighbors) -> np.ndarray:
    """Each training item's novelty score among the other items (itself left out)."""
    return stored.kneighbors(stored.items, exclude_self=True)[0][:, -1]
