"""Linear models and float32 step chains for emllinear: the IR, its lowering and the numpy reference.

A linear model is one matrix-vector product (:class:`Linear`: coef, intercept and
how decision values become a prediction). :func:`lower` turns a pipeline IR
(mpyml.pipeline) whose final estimator is a Linear, or None, into the
:class:`StoredChain` that the mpyml-linear file holds: float32 affine, select
and matrix steps, and the output rule. StoredChain.transform/predict/predict_proba
mirror the device's float32 arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ExportError
from .labels import check_columns, feature_names_of
from .nets import F32, SIGMOID_LIMIT, expf, recipf
from .pipeline import Matrix, PerFeature, Select
from .trees import CLASSIFIER, REGRESSOR

TRANSFORMER = "transformer"
# How a classifier's decision values become probabilities.
PROBA_NONE, PROBA_LOGISTIC, PROBA_SOFTMAX, PROBA_OVR = "none", "logistic", "softmax", "ovr"
MAX_WIDTH = 65535
MAX_STEPS = 255
# How far a float32 output may be from the float64 one, relative to its scale: what mpyml.verify
# allows float32 linear outputs and regressors (verify.REGRESSION_RTOL and _close_to_scale use it).
FLOAT32_RTOL = 1e-5
FLOAT32_EPS = 2.0 ** -24  # float32's unit roundoff: rounding to float32 moves a value by at most this, relatively

_CLASSIFIERS = ("LogisticRegression", "LinearSVC", "RidgeClassifier", "SGDClassifier")
_REGRESSORS = ("LinearRegression", "Ridge", "SGDRegressor")


@dataclass
class Linear:
    kind: str  # CLASSIFIER or REGRESSOR
    coef: np.ndarray  # float64 (n_out, n_features); binary classifiers have one row
    intercept: np.ndarray  # float64 (n_out,)
    proba: str = PROBA_NONE
    classes: np.ndarray | None = None
    feature_names: list | None = None  # the estimator's feature_names_in_ (str), or None

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]


def linear_from_sklearn(estimator, name: str = "estimator") -> Linear:

    cls = type(estimator).__name__
    feature_names = feature_names_of(estimator)
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64)) * np.ones(len(coef))
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ExportError("step '%s' (%s): fitted coef_ or intercept_ holds NaN or infinity" % (name, cls))
    if cls in _REGRESSORS:
        if coef.shape[0] != 1:
            raise ExportError("step '%s' (%s): only single-output regressors are supported, got %d outputs"
                              % (name, cls, coef.shape[0]))
        return Linear(REGRESSOR, coef, intercept, feature_names=feature_names)
    classes = np.asarray(estimator.classes_)
    proba = PROBA_NONE
    if cls == "LogisticRegression":
        multinomial = len(classes) > 2 and getattr(estimator, "multi_class", "auto") in ("auto", "multinomial", "deprecated")
        proba = PROBA_LOGISTIC if len(classes) == 2 else (PROBA_SOFTMAX if multinomial else PROBA_OVR)
    return Linear(CLASSIFIER, coef, intercept, proba=proba, classes=classes, feature_names=feature_names)


@dataclass
class StoredStep:
    kind: str  # "affine" (y = x * a + b), "select" (y = x[indices]) or "matrix" (y = W x + b)
    n_in: int
    n_out: int
    a: np.ndarray | None = None  # float32: affine scales, or matrix weights (n_out, n_in)
    b: np.ndarray | None = None  # float32: affine shifts or matrix biases
    indices: np.ndarray | None = None  # int64 (select)

    @property
    def n_values(self) -> int:
        """float32 words the device stores for this step (select indices take one word each)."""
        if self.kind == "select":
            return self.n_out
        return self.a.size + self.b.size


@dataclass
class StoredChain:
    kind: str  # CLASSIFIER, REGRESSOR or TRANSFORMER
    n_features: int
    n_outputs: int  # classes, 1 for regressors, output width for transformers
    proba: str
    steps: list = field(default_factory=list)
    classes: np.ndarray | None = None  # classifiers: class labels (the estimator's classes_)
    feature_names: list | None = None  # the input's feature names (str), or None

    @property
    def n_values(self) -> int:
        return sum(step.n_values for step in self.steps)

    @property
    def max_width(self) -> int:
        return max([self.n_features] + [s.n_out for s in self.steps])

    def ram_bytes(self) -> int:
        """Bytes of the device's model block (mirrors mpyml_linear_bytes in mpyml_linear.h)."""
        return 16 * len(self.steps) + 4 * self.n_values + 8 * self.max_width

    def transform(self, X) -> np.ndarray:
        """float32 outputs of the steps, summed in the device's order. A DataFrame must have the
        columns the model was fitted with, in that order (ValueError otherwise)."""
        check_columns(X, self.feature_names)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError("X: expected shape (n_rows, %d), got %s" % (self.n_features, X.shape))
        for step in self.steps:
            if step.kind == "affine":
                X = X * step.a + step.b
            elif step.kind == "select":
                X = X[:, step.indices]
            else:
                acc = np.broadcast_to(step.b, (len(X), step.n_out)).astype(np.float32)
                for j in range(step.n_in):
                    acc = acc + X[:, j:j + 1] * step.a[:, j]
                X = acc
        return X

    def decision(self, X) -> np.ndarray:
        return self.transform(X)

    def predict(self, X) -> np.ndarray:
        """Class labels (classifiers, as scikit-learn's predict) or values (regressors)."""
        if self.kind == CLASSIFIER and self.classes is not None:
            return np.asarray(self.classes)[self.predict_index(X)]
        return self.predict_index(X)

    def predict_index(self, X) -> np.ndarray:
        """What the device's predict returns: class indices (classifiers) or values (regressors)."""
        d = self.decision(X)
        if self.kind == REGRESSOR:
            return d[:, 0]
        if self.kind != CLASSIFIER:
            raise TypeError("predict: the model is a transformer (use transform)")
        if d.shape[1] == 1:
            return (d[:, 0] > 0).astype(np.int64)
        return np.argmax(d, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """float32 probabilities exactly as the device computes them (mpyml_linear_predict_proba:
        mpyml_expf and mpyml_recipf, mirrored by mpyml.nets.expf and recipf, sums in class order)."""
        if self.kind != CLASSIFIER or self.proba == PROBA_NONE:
            raise TypeError("predict_proba: the model has no probabilities")
        d = self.decision(X).astype(F32)

        def sigmoid(v):
            return recipf((F32(1) + expf(-np.clip(v, -SIGMOID_LIMIT, SIGMOID_LIMIT))).astype(F32))

        if self.proba == PROBA_LOGISTIC:
            p = sigmoid(d[:, 0])
            return np.stack([(F32(1) - p).astype(F32), p], axis=1)
        if self.proba == PROBA_SOFTMAX:
            e = expf((d - d.max(axis=1, keepdims=True)).astype(F32))
        else:
            e = sigmoid(d)
        total = np.zeros(len(d), dtype=F32)
        for i in range(d.shape[1]):
            total = (total + e[:, i]).astype(F32)
        return (e * recipf(total)[:, None]).astype(F32)


def _lower_step(step) -> StoredStep:
    if isinstance(step, PerFeature):
        if step.clip is not None:
            raise ExportError("step '%s' (MinMaxScaler with clip=True) runs only folded into trees" % step.name)
        a, b = step.affine32()
        return StoredStep("affine", step.n_features, step.n_features, a=a, b=b)
    if isinstance(step, Select):
        return StoredStep("select", step.n_features, step.n_out, indices=step.indices.copy())
    if isinstance(step, Matrix):
        return StoredStep("matrix", step.n_features, step.n_out, a=step.weights.astype(np.float32),
                          b=step.bias.astype(np.float32))
    raise ExportError("unknown step %r" % (step,))


def fuse(steps: list) -> list:
    """Folds each per-feature affine step into a matrix step right after it (in float64, one
    pass less on the device): W @ (x * a + b) + c = (W * a) @ x + (W @ b + c)."""
    out = []
    for step in steps:
        prev = out[-1] if out else None
        if isinstance(step, Matrix) and isinstance(prev, PerFeature) and prev.clip is None:
            a, b = prev.affine64()
            out[-1] = Matrix("%s+%s" % (prev.name, step.name), prev.n_features, step.weights * a,
                             step.weights @ b + step.bias)
        else:
            out.append(step)
    return out


def raw_offsets(ir) -> tuple[np.ndarray, np.ndarray] | None:
    """(location, spread) of each raw feature, float64 (n_features,), as the pipeline's first step saw
    them when it was fitted: a per-feature scaler maps x to (x - location) / spread (StandardScaler:
    mean_ and scale_, RobustScaler: center_ and scale_, MinMaxScaler: data_min_ and data_range_;
    MaxAbsScaler: 0 and max_abs_). None when the first step is not a per-feature scaler (a bare
    model or a pipeline starting with selection or PCA): then mpyml does not know where the data lie."""
    if not ir.steps or not isinstance(ir.steps[0], PerFeature):
        return None
    a, b = ir.steps[0].affine64()
    slope = np.where(a != 0, a, 1.0)
    return -b / slope, 1.0 / np.abs(slope)


def _output_map(ir) -> np.ndarray:
    """|d output / d raw feature| of the steps and the linear final estimator, float64 (n_out, n_features)."""
    jacobian = np.eye(ir.n_features)
    for step in ir.steps:
        if isinstance(step, PerFeature):
            jacobian = step.affine64()[0][:, None] * jacobian
        elif isinstance(step, Select):
            jacobian = jacobian[step.indices]
        else:
            jacobian = step.weights @ jacobian
    if isinstance(ir.final, Linear):
        jacobian = ir.final.coef @ jacobian
    return np.abs(jacobian)


def offset_rounding(ir) -> tuple[float, np.ndarray] | None:
    """How much float32 can move the outputs because the raw features sit far from 0 for their spread.

    The device takes the raw features as float32 and its first step multiplies them in float32: each
    feature j, near its fitted location m_j (raw_offsets), is rounded by up to FLOAT32_EPS * |m_j|,
    which moves output i by up to FLOAT32_EPS * sum_j |G_ij| |m_j| (G: the whole chain's linear map,
    raw features to outputs: decision values, regression value or transform). The float32 sums of
    the products (folded scaler: w.x against an intercept of about -w.m) err by the same order
    (Higham's bound: n * FLOAT32_EPS * sum_j |G_ij x_j|). The scale it is measured against is what
    output i changes by when every feature moves one spread s_j: sum_j |G_ij| s_j.

    Returns (the largest ratio over the outputs, each feature's share FLOAT32_EPS * |m_j| / s_j),
    or None when raw_offsets is None. A ratio above FLOAT32_RTOL loses digits that mpyml.verify checks.
    """
    offsets = raw_offsets(ir)
    if offsets is None:
        return None
    location, spread = offsets
    jacobian = _output_map(ir)
    scale = jacobian @ spread
    moved = FLOAT32_EPS * (jacobian @ np.abs(location))
    ratio = float(np.max(moved / np.maximum(scale, 1e-300), initial=0.0))
    return ratio, FLOAT32_EPS * np.abs(location) / spread


def offset_warning(ir) -> str | None:
    """The PrecisionWarning's message when offset_rounding exceeds FLOAT32_RTOL, else None.

    A bare linear model (or steps not starting with a per-feature scaler) is not checked: scikit-learn's
    linear models keep nothing about where the data lie, and their intercept does not show it (features
    sharing one offset can cancel in w.x instead). mpyml.verify on real rows measures it."""
    found = offset_rounding(ir)
    if found is None or found[0] <= FLOAT32_RTOL:
        return None
    ratio, share = found
    location, spread = raw_offsets(ir)
    worst = [int(j) for j in np.argsort(-share, kind="stable") if share[j] > FLOAT32_RTOL] or [int(np.argmax(share))]
    names = getattr(ir, "feature_names", None)
    label = [repr(names[j]) if names else str(j) for j in worst]
    first = worst[0]
    return ("feature%s %s%s (of %d) %s far from 0 for %s spread (feature %s: offset %.6g, spread %.3g, as step '%s' "
            "was fitted). The device takes features as float32, which at that magnitude resolves only %.2g, and that "
            "moves the model's output by up to %.2g of its scale (mpyml.verify allows %g): unless the values are exact "
            "in float32 (e.g. integers below 2**24, which the device centres exactly), rows near the decision boundary "
            "may be predicted differently from scikit-learn. Subtract the offset before the features become float32, "
            "on the PC before fitting and on the device before predict (e.g. x - %.6g)"
            % ("s" if len(worst) > 1 else "", ", ".join(label[:5]), " and %d more" % (len(worst) - 5) if len(worst) > 5
               else "", ir.n_features, "are" if len(worst) > 1 else "is", "their" if len(worst) > 1 else "its",
               label[0], location[first], spread[first], ir.steps[0].name, FLOAT32_EPS * abs(location[first]), ratio,
               FLOAT32_RTOL, location[first]))


def _centred(ir_steps: list, location: np.ndarray) -> list:
    """The steps with their first (per-feature) step split in two: y = x - c, with c the fitted location
    rounded to float32, then the scaler on the centred values. The device's x - c is exact for
    c / 2 <= x <= 2 c (Sterbenz) and small otherwise relative to x - c, so a float32 x far from 0
    keeps its digits; the second part (slope a, offset a * (c - location)) folds into the matrix
    after it like any scaler."""
    first = ir_steps[0]
    slope = first.affine64()[0]
    centre = location.astype(np.float32).astype(np.float64)
    return [PerFeature("%s (centre)" % first.name, first.n_features, offset=-centre),
            PerFeature(first.name, first.n_features, factor=slope, offset=slope * (centre - location))] + ir_steps[1:]


def lower(ir) -> StoredChain:
    """The mpyml-linear form of a pipeline IR whose final estimator is a Linear or None."""
    ir_steps = list(ir.steps)
    final = ir.final
    if final is None:
        if not ir_steps:
            raise ExportError("the pipeline has no steps")
        kind, proba, classes = TRANSFORMER, PROBA_NONE, None
        feature_names = getattr(ir, "feature_names", None)
    elif isinstance(final, Linear):
        feature_names = getattr(ir, "feature_names", None) if ir_steps else final.feature_names
        ir_steps.append(Matrix("estimator", final.n_features, final.coef, final.intercept))
        kind, proba, classes = final.kind, final.proba, final.classes
    else:
        raise ExportError("emllinear runs steps and linear models only, got %s" % type(final).__name__)
    found = offset_rounding(ir)
    if found is not None and found[0] > FLOAT32_RTOL and ir_steps[0].clip is None:
        ir_steps = _centred(ir_steps, raw_offsets(ir)[0])
    fused = fuse(ir_steps)
    steps = [_lower_step(step) for step in fused]
    for ir_step, step in zip(fused, steps):
        values = [v for v in (step.a, step.b) if v is not None]
        if not all(np.all(np.isfinite(v)) for v in values):
            # the device computes in float32 (and refuses a file holding infinity): say so here, naming the step
            raise ExportError("step '%s': its float32 weights overflow (a value beyond 3.4e38, e.g. the 1 / scale_ of "
                              "features of magnitude below 1e-38); rescale the features before fitting"
                              % getattr(ir_step, "name", type(ir_step).__name__))
    n_outputs = steps[-1].n_out if kind == TRANSFORMER else (len(classes) if kind == CLASSIFIER else 1)
    for step in steps:
        if step.n_in > MAX_WIDTH or step.n_out > MAX_WIDTH:
            raise ExportError("a step is %d wide, the format supports at most %d" % (max(step.n_in, step.n_out), MAX_WIDTH))
    if len(steps) > MAX_STEPS:
        raise ExportError("%d steps, the format supports at most %d" % (len(steps), MAX_STEPS))
    return StoredChain(kind=kind, n_features=ir.n_features, n_outputs=n_outputs, proba=proba, steps=steps,
                       classes=classes, feature_names=feature_names)


@dataclass
class StoredPipeline:
    """Steps that mix features in front of a tree or neighbors model: two files, composed on the device.

    `steps` (a transformer StoredChain, run by emllinear) writes the estimator's input;
    `model` (a trees.StoredForest or neighbors.StoredNeighbors, float32 features) predicts from it.
    """

    steps: StoredChain
    model: object

    @property
    def n_features(self) -> int:
        return self.steps.n_features

    def transform(self, X) -> np.ndarray:
        return self.steps.transform(X)

    def predict(self, X) -> np.ndarray:
        """Class labels, as scikit-learn's pipeline.predict."""
        return self.model.predict(self.transform(X))

    def predict_index(self, X) -> np.ndarray:
        """Class indices, what the device's predict returns (tree models' predict gives indices)."""
        model = self.model
        return (model.predict_index if hasattr(model, "predict_index") else model.predict)(self.transform(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.model.predict_proba(self.transform(X))
