"""scikit-learn Pipelines: the intermediate representation of their steps, and folding into trees.

A fitted ``Pipeline`` is converted once into a :class:`PipelineIR`: a chain of
step IRs (:class:`PerFeature` affine scalers, :class:`Select` column selection,
:class:`Matrix` projections: PCA, TruncatedSVD) and the final estimator's IR
(a trees.Forest, a linear.Linear, or None for a pure feature transformer).

Per-feature steps and column selection in front of a tree model are folded
into the trees by :func:`fold_into_forest`: every node gets the exact threshold
in raw feature space, so the device file is a plain mpyml-trees file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import ExportError
from .labels import feature_names_of
from .trees import INT16_MAX, INT16_MIN, Forest, Tree


@dataclass
class PerFeature:
    """y = ((x - center) / divisor) * factor + offset, then clipped; each array per feature or None (skipped).

    The operations are those scikit-learn's scalers do, in float64 and in this order.
    """

    name: str
    n_features: int
    center: np.ndarray | None = None
    divisor: np.ndarray | None = None
    factor: np.ndarray | None = None
    offset: np.ndarray | None = None
    clip: tuple[float, float] | None = None
    source: object = field(default=None, repr=False)  # the fitted scikit-learn step, for its exact arithmetic

    @property
    def n_out(self) -> int:
        return self.n_features

    def apply(self, values: np.ndarray, features: np.ndarray, input_dtype: str = "float64") -> np.ndarray:
        """The transform of `values`, each of input feature `features` (same shape), as float64.

        input_dtype is the dtype of the array scikit-learn transforms ('float32' or 'float64'): with
        `source` (the fitted scikit-learn step) its own transform computes it, bit for bit as in
        pipeline.predict; without, the operations in this order, each rounded to input_dtype.
        """
        if self.source is not None:
            return _source_apply(self.source, self.n_features, values, features, input_dtype)
        dtype = np.dtype(input_dtype).type
        y = np.asarray(values, dtype=np.float64).copy()
        if self.center is not None:
            y = dtype(y - self.center[features]).astype(np.float64)
        if self.divisor is not None:
            y = dtype(y / self.divisor[features]).astype(np.float64)
        if self.factor is not None:
            y = dtype(y * self.factor[features]).astype(np.float64)
        if self.offset is not None:
            y = dtype(y + self.offset[features]).astype(np.float64)
        if self.clip is not None:
            y = np.clip(y, self.clip[0], self.clip[1])
        return y

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return self.apply(X, np.broadcast_to(np.arange(self.n_features), X.shape))

    def slope_sign(self) -> np.ndarray:
        """Per feature: +1 increasing, -1 decreasing, 0 constant."""
        sign = np.ones(self.n_features)
        if self.divisor is not None:
            sign *= np.sign(self.divisor)
        if self.factor is not None:
            sign *= np.sign(self.factor)
        return sign

    def affine32(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) float32 for the device's y = x * scale + shift (clip is not representable)."""
        a, b = self.affine64()
        return a.astype(np.float32), b.astype(np.float32)

    def affine64(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) with y = x * scale + shift in exact arithmetic (clip aside)."""
        a = np.ones(self.n_features)
        b = np.zeros(self.n_features)
        if self.center is not None:
            b = b - self.center
        if self.divisor is not None:
            a, b = a / self.divisor, b / self.divisor
        if self.factor is not None:
            a, b = a * self.factor, b * self.factor
        if self.offset is not None:
            b = b + self.offset
        return a, b


def _source_apply(source, n_features: int, values, features, input_dtype: str) -> np.ndarray:
    """source.transform of `values` (each in column `features`), computed on an input_dtype array.

    The steps transform each column on its own, so values of different columns share a row:
    row r holds the r-th value of each column, the other cells 0.
    """
    values = np.asarray(values, dtype=np.float64)
    features = np.asarray(features, dtype=np.int64)
    shape = values.shape
    values, features = values.ravel(), np.broadcast_to(features, shape).ravel()
    if len(values) == 0:
        return values.reshape(shape)
    order = np.argsort(features, kind="stable")
    first = np.searchsorted(features[order], features[order], side="left")
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - first
    dtype = np.dtype(input_dtype)
    X = np.zeros((int(rank.max()) + 1, n_features), dtype=dtype)
    # scikit-learn refuses infinite input; a float32 step can overflow on the largest raw values.
    limit = np.finfo(dtype).max
    X[rank, features] = np.clip(values, -limit, limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "X does not have valid feature names"
        Y = source.transform(X)
    return np.asarray(Y, dtype=np.float64)[rank, features].reshape(shape)


@dataclass
class Select:
    """Keeps the input columns `indices`, in this order."""

    name: str
    n_features: int
    indices: np.ndarray  # int64

    @property
    def n_out(self) -> int:
        return len(self.indices)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, self.indices]


@dataclass
class Matrix:
    """y = W @ x + bias (PCA: W = components / sqrt(explained variance) when whitening, bias = -W @ mean)."""

    name: str
    n_features: int
    weights: np.ndarray  # float64 (n_out, n_features)
    bias: np.ndarray  # float64 (n_out,)

    @property
    def n_out(self) -> int:
        return self.weights.shape[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.weights.T + self.bias


@dataclass
class PipelineIR:
    n_features: int
    steps: list = field(default_factory=list)  # PerFeature | Select | Matrix, in order
    final: object = None  # trees.Forest, linear.Linear, neighbors IR, or None
    feature_names: list | None = None  # the pipeline's feature_names_in_ (str), or None

    @property
    def n_out(self) -> int:
        return self.steps[-1].n_out if self.steps else self.n_features

    def transform(self, X: np.ndarray) -> np.ndarray:
        """float64 reference of the steps (scikit-learn's arithmetic for the per-feature steps)."""
        X = np.asarray(X, dtype=np.float64)
        for step in self.steps:
            X = step.transform(X)
        return X


def _finite(name: str, estimator, **arrays) -> None:
    for attribute, value in arrays.items():
        if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
            raise ExportError("step '%s' (%s): fitted %s holds NaN or infinity" % (name, type(estimator).__name__, attribute))


def _nonzero(name: str, estimator, attribute: str, value) -> None:
    if value is not None and np.any(value == 0):
        raise ExportError("step '%s' (%s): fitted %s holds 0, a division by zero" % (name, type(estimator).__name__, attribute))


def _optional(values, enabled: bool):
    return np.asarray(values, dtype=np.float64) if enabled and values is not None else None


def step_from_sklearn(name: str, estimator, n_features: int):
    """The IR of one fitted transformer step, or ExportError naming the step and its class."""
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.feature_selection import SelectFromModel, SelectKBest, SelectPercentile, VarianceThreshold
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    cls = type(estimator).__name__
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is not None and n_in != n_features:
        raise ExportError("step '%s' (%s) takes %d features but the step before it gives %d"
                          % (name, cls, n_in, n_features))
    if type(estimator) is StandardScaler:
        center = _optional(estimator.mean_, estimator.with_mean)
        divisor = _optional(estimator.scale_, estimator.with_std)
        _finite(name, estimator, mean_=center, scale_=divisor)
        _nonzero(name, estimator, "scale_", divisor)
        return PerFeature(name, n_features, center=center, divisor=divisor, source=estimator)
    if type(estimator) is RobustScaler:
        center = _optional(estimator.center_, estimator.with_centering)
        divisor = _optional(estimator.scale_, estimator.with_scaling)
        _finite(name, estimator, center_=center, scale_=divisor)
        _nonzero(name, estimator, "scale_", divisor)
        return PerFeature(name, n_features, center=center, divisor=divisor, source=estimator)
    if type(estimator) is MaxAbsScaler:
        divisor = np.asarray(estimator.scale_, dtype=np.float64)
        _finite(name, estimator, scale_=divisor)
        _nonzero(name, estimator, "scale_", divisor)
        return PerFeature(name, n_features, divisor=divisor, source=estimator)
    if type(estimator) is MinMaxScaler:
        factor, offset = np.asarray(estimator.scale_, dtype=np.float64), np.asarray(estimator.min_, dtype=np.float64)
        _finite(name, estimator, scale_=factor, min_=offset)
        clip = tuple(float(v) for v in estimator.feature_range) if estimator.clip else None
        return PerFeature(name, n_features, factor=factor, offset=offset, clip=clip, source=estimator)
    if type(estimator) in (SelectKBest, SelectPercentile, VarianceThreshold, SelectFromModel):
        indices = np.flatnonzero(estimator.get_support()).astype(np.int64)
        if len(indices) == 0:
            raise ExportError("step '%s' (%s) selects no features" % (name, cls))
        return Select(name, n_features, indices)
    if type(estimator) is PCA:
        components = np.asarray(estimator.components_, dtype=np.float64)
        mean = np.asarray(estimator.mean_, dtype=np.float64)
        _finite(name, estimator, components_=components, mean_=mean, explained_variance_=estimator.explained_variance_)
        weights = components
        if estimator.whiten:
            weights = components / np.sqrt(np.asarray(estimator.explained_variance_, dtype=np.float64))[:, None]
        return Matrix(name, n_features, weights, -(weights @ mean))
    if type(estimator) is TruncatedSVD:
        components = np.asarray(estimator.components_, dtype=np.float64)
        _finite(name, estimator, components_=components)
        return Matrix(name, n_features, components, np.zeros(len(components)))
    raise ExportError("step '%s' (%s) is not supported; supported transformers: StandardScaler, MinMaxScaler, "
                      "MaxAbsScaler, RobustScaler, PCA, TruncatedSVD, SelectKBest, SelectPercentile, "
                      "VarianceThreshold, SelectFromModel" % (name, cls))


def _is_transformer(estimator) -> bool:
    return hasattr(estimator, "transform") and not hasattr(estimator, "predict")


def final_from_sklearn(name: str, estimator, n_features: int):
    """The IR of the pipeline's final estimator: a tree model, k-NN or linear model (mpyml.registry)."""
    from . import registry

    cls = type(estimator).__name__
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is not None and n_in != n_features:
        raise ExportError("step '%s' (%s) takes %d features but the step before it gives %d"
                          % (name, cls, n_in, n_features))
    row = registry.lookup(estimator, registry.PIPELINE_FINAL, "step '%s' (%s)" % (name, cls), "final estimator")
    return row.convert(estimator, name=name) if row.family == "linear" else row.convert(estimator)


def _flat_steps(pipeline) -> list:
    """(name, estimator) of every step, nested Pipelines expanded, 'passthrough' and None left out."""
    steps = []
    for name, estimator in pipeline.steps:
        if is_pipeline(estimator):
            steps += _flat_steps(estimator)
        elif estimator is not None and not (isinstance(estimator, str) and estimator == "passthrough"):
            steps.append((name, estimator))
    return steps


def pipeline_from_sklearn(pipeline) -> PipelineIR:
    """Converts a fitted sklearn.pipeline.Pipeline into its IR."""
    from sklearn.utils.validation import check_is_fitted

    steps = _flat_steps(pipeline)
    if not steps:
        raise ExportError("the pipeline has no steps")
    first = steps[0][1]
    check_is_fitted(first)
    if not hasattr(first, "n_features_in_"):
        raise ExportError("step '%s' (%s) does not say how many features it takes" % (steps[0][0], type(first).__name__))

    ir = PipelineIR(n_features=int(first.n_features_in_), feature_names=feature_names_of(first))
    width = ir.n_features
    last_name, last = steps[-1]
    transformers = steps if _is_transformer(last) else steps[:-1]
    for name, estimator in transformers:
        check_is_fitted(estimator)
        step = step_from_sklearn(name, estimator, width)
        ir.steps.append(step)
        width = step.n_out
    if not _is_transformer(last):
        check_is_fitted(last)
        ir.final = final_from_sklearn(last_name, last, width)
    return ir


def is_pipeline(estimator) -> bool:
    from sklearn.pipeline import Pipeline

    return isinstance(estimator, Pipeline)


# --- Folding per-feature steps into tree thresholds -------------------------------------------

_FLOAT32_MAX_KEY = 0x7F7FFFFF  # key of the largest finite float32


def _float32_of_key(keys: np.ndarray) -> np.ndarray:
    """Finite float32 values ordered like their integer keys (key 0 is +0.0)."""
    keys = np.asarray(keys, dtype=np.int64)
    bits = np.where(keys >= 0, keys, (-keys) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def raw_values(keys: np.ndarray, dtype: str) -> np.ndarray:
    """The raw feature value of each search key, as float64 (exactly a float32, or an int16)."""
    if dtype == "int16":
        return np.asarray(keys, dtype=np.float64)
    return _float32_of_key(keys).astype(np.float64)


def _key_range(dtype: str) -> tuple[int, int]:
    return (-32768, 32767) if dtype == "int16" else (-_FLOAT32_MAX_KEY, _FLOAT32_MAX_KEY)


INPUT_DTYPES = ("float32", "float64")


def check_input_dtype(input_dtype) -> str:
    """'float32' or 'float64': the dtype scikit-learn's scalers compute in for input of `input_dtype`
    (a dtype or its name; integer and bool input is converted to float64, as scikit-learn does)."""
    try:
        dtype = np.dtype(input_dtype)
    except TypeError:
        raise ExportError("input_dtype must be float32 or float64, got %r" % (input_dtype,)) from None
    if dtype.kind in "iub":
        return "float64"
    if dtype.name not in INPUT_DTYPES:
        raise ExportError("input_dtype must be float32 or float64, got %r" % (input_dtype,))
    return dtype.name


def fitted_input_dtype(ir: PipelineIR) -> str | None:
    """'float32' when a fitted step kept float32 attributes (MinMaxScaler, MaxAbsScaler, RobustScaler
    fitted on float32 data do); None when the steps do not show it (StandardScaler keeps float64)."""
    for step in ir.steps:
        source = getattr(step, "source", None)
        if source is not None and any(isinstance(v, np.ndarray) and v.dtype == np.float32
                                      for k, v in vars(source).items() if k.endswith("_")):
            return "float32"
    return None


def foldable(ir: PipelineIR) -> bool:
    return all(isinstance(step, (PerFeature, Select)) for step in ir.steps)


def _raw_feature(ir: PipelineIR, feature: np.ndarray) -> list[np.ndarray]:
    """Per step, the input feature index of each transformed feature in `feature`; last entry: the raw index."""
    chain = [np.asarray(feature, dtype=np.int64)]
    for step in reversed(ir.steps):
        index = chain[-1]
        chain.append(step.indices[index] if isinstance(step, Select) else index)
    chain.reverse()  # chain[k] = input feature index of step k; chain[-1] = the tree's feature
    return chain


def steps_value(ir: PipelineIR, raw: np.ndarray, inputs: list[np.ndarray], input_dtype: str = "float64") -> np.ndarray:
    """The transformed value, as float64, of each raw value through the per-feature steps (`inputs`: per
    step, each value's input column; see _raw_feature)."""
    y = np.asarray(raw, dtype=np.float64)
    for step, feature in zip(ir.steps, inputs):
        if isinstance(step, PerFeature):
            y = step.apply(y, feature, input_dtype)
    return y


def integer_trained(ir: PipelineIR) -> bool:
    """True when every decision node's threshold, taken back to raw feature space, is a half-integer (or
    integer) within int16 range: scikit-learn puts thresholds midway between two transformed training
    values, so the model looks trained on integer raw features. The transformed training values were
    rounded to float32 (and, for float32 input, after each step): a rounding at transformed value y moves
    the raw threshold by some units of 2**-24 * |raw - zero| (zero: the raw value the affine steps map to 0)
    and, at the magnitudes of the int16 range, by at most 2**-24 * 2**16. The tolerance per threshold and
    rounding is the smaller of 2**-14 * (|raw| + |zero|) and 2**-24 * 2**16 (plus four float32 steps at
    the half-integer): the absolute bound alone would
    call the thresholds of small non-integer features (0.001 next to 0) integers. A model without a finite
    threshold shows nothing: not integer-trained."""
    forest = ir.final
    features = np.concatenate([t.feature[t.left >= 0] for t in forest.trees] + [np.zeros(0, np.int64)])
    thresholds = np.concatenate([t.threshold[t.left >= 0] for t in forest.trees] + [np.zeros(0)])
    _, raw, _ = raw_thresholds(ir, features, thresholds, "float32")
    zero, slope = _zero_points(ir, features)
    finite = np.isfinite(raw)
    raw, zero, slope = raw[finite], zero[finite], slope[finite]
    half = np.round(2 * raw) / 2
    n_roundings = 2 * sum(isinstance(step, PerFeature) for step in ir.steps)
    with np.errstate(invalid="ignore"):
        relative = 2.0**-14 * (np.abs(raw) + np.abs(zero))
    tolerance = np.fmin(relative, 2.0**-24 * 2**16) * n_roundings  # fmin: a constant step's NaN takes the bound
    # and a few float32 steps at the half-integer, and the smallest float32 step (2**-149) in transformed space
    # taken back to raw space: the raw threshold is the largest float32 sent left (for a threshold of 0, the
    # largest raw value the steps round to 0)
    with np.errstate(divide="ignore"):
        tolerance = (tolerance + 4 * np.spacing(np.abs(half).astype(np.float32)).astype(np.float64)
                     + 4 * 2.0**-149 / np.abs(slope))
    return bool(len(raw) and np.all(np.abs(raw - half) <= tolerance) and np.all((half >= INT16_MIN) & (half <= INT16_MAX)))


def _zero_points(ir: PipelineIR, feature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per transformed feature index in `feature`: (the raw value the per-feature steps map to 0, the slope of
    their composed affine map), float64; the zero is -shift / slope, inf or NaN where a step is constant."""
    chain = _raw_feature(ir, feature)
    scale, shift = np.ones(len(feature)), np.zeros(len(feature))
    for step, index in zip(ir.steps, chain[:-1]):
        if isinstance(step, PerFeature):
            a, b = step.affine64()
            scale, shift = scale * a[index], shift * a[index] + b[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        return -shift / scale, scale


def tree_side(ir: PipelineIR, raw: np.ndarray, inputs: list[np.ndarray], threshold: np.ndarray,
              input_dtype: str = "float64") -> np.ndarray:
    """True where scikit-learn's pipeline, given the raw value in an input_dtype array, sends it left:
    float32(steps(raw)) <= threshold (steps(raw) <= threshold for models that compare float64 features:
    HistGradientBoosting, LightGBM)."""
    y = steps_value(ir, raw, inputs, input_dtype)
    boost = getattr(ir.final, "boost", None)
    if boost is not None and boost.compare64:
        return y <= threshold
    # Tree estimators cast their input to float32 before comparing with the float64 threshold.
    with np.errstate(over="ignore"):
        return y.astype(np.float32).astype(np.float64) <= threshold


def raw_thresholds(ir: PipelineIR, feature: np.ndarray, threshold: np.ndarray, dtype: str, input_dtype: str = "float64"):
    """For decision nodes on transformed features: (raw feature, raw threshold, swap children).

    dtype: the raw features the device gets (int16 or float32); input_dtype: the array dtype
    scikit-learn computes the steps in (float32 or float64: what the user passes to predict).

    The device sends x left when x <= raw threshold (after swapping children where
    the steps decrease): exactly the raw values that scikit-learn sends left.
    The raw threshold is -inf / +inf where no / every raw value goes the device's left.
    """
    chain = _raw_feature(ir, feature)
    raw_feature, inputs = chain[0], chain[:-1]
    sign = np.ones(len(feature))
    for step, index in zip(ir.steps, inputs):
        if isinstance(step, PerFeature):
            sign *= step.slope_sign()[index]
    decreasing = sign < 0
    threshold = np.asarray(threshold, dtype=np.float64)

    def device_left(keys):
        return tree_side(ir, raw_values(keys, dtype), inputs, threshold, input_dtype) != decreasing

    # device_left is true up to some key and false after it: find the largest true key by bisection.
    low_key, high_key = _key_range(dtype)
    lo = np.full(len(feature), low_key, dtype=np.int64)
    hi = np.full(len(feature), high_key, dtype=np.int64)
    none_left = ~device_left(lo)
    while np.any(lo < hi):
        mid = lo + (hi - lo + 1) // 2
        ok = device_left(mid)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid - 1)
    raw = raw_values(lo, dtype)
    raw[none_left] = -np.inf
    if dtype == "float32":
        raw[~none_left & (lo == high_key)] = np.inf
    return raw_feature, raw, decreasing


def fold_into_forest(ir: PipelineIR, dtype: str, input_dtype: str = "float64") -> Forest:
    """The forest on raw features of `dtype` (int16, float32) that decides as pipeline.predict does
    on an array of `input_dtype` (float32, float64) holding the same values."""
    input_dtype = check_input_dtype(input_dtype)
    forest = ir.final
    if not isinstance(forest, Forest):
        raise ExportError("only tree models take folded steps")
    if not foldable(ir):
        raise ExportError("steps that mix features (PCA, TruncatedSVD) cannot be folded into trees")
    # One bisection for the decision nodes of all trees together.
    splits = [tree.left >= 0 for tree in forest.trees]
    features = np.concatenate([tree.feature[split] for tree, split in zip(forest.trees, splits)] + [np.zeros(0, np.int64)])
    thresholds = np.concatenate([tree.threshold[split] for tree, split in zip(forest.trees, splits)] + [np.zeros(0)])
    raw_feature, raw, swap = raw_thresholds(ir, features, thresholds, dtype, input_dtype)
    trees, start = [], 0
    for tree, split in zip(forest.trees, splits):
        end = start + int(split.sum())
        feature, threshold = tree.feature.copy(), tree.threshold.copy()
        left, right = tree.left.copy(), tree.right.copy()
        nan_left = tree.nan_left.copy()
        feature[split], threshold[split] = raw_feature[start:end], raw[start:end]
        nodes = np.flatnonzero(split)[swap[start:end]]
        left[nodes], right[nodes] = tree.right[nodes], tree.left[nodes]
        # The steps map NaN to NaN, which still goes to the same child, now on the other side.
        nan_left[nodes] = ~tree.nan_left[nodes]
        trees.append(Tree(feature=feature, threshold=threshold, left=left, right=right, value=tree.value,
                          nan_left=nan_left, proba=tree.proba))
        start = end
    return Forest(kind=forest.kind, n_features=ir.n_features, n_classes=forest.n_classes, trees=trees,
                  classes=forest.classes, tree_weights=forest.tree_weights, weight_sum=forest.weight_sum,
                  boost=forest.boost)
