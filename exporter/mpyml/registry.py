"""The one table of supported estimators: class -> (family, converter); per family, the export options.

mpyml.export() and mpyml.convert() look an estimator up here by its exact class
(a subclass is refused unless it has its own row: it may predict differently).
An estimator without a row raises ExportError naming its class and listing the
supported ones. Adding a class is one row; adding a family is one Family plus
its export function.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import linear, mixture, neighbors, nets, pipeline, trees
from .errors import ExportError, PrecisionWarning
from .formats import linear as linear_format, mixture as mixture_format, neighbors as neighbors_format
from .formats import nets as nets_format, trees as trees_format
from .trees import INT16_MAX, INT16_MIN


FEATURE_DTYPES = ("auto", "int16", "float32")


def _warn(message: str) -> None:
    """A PrecisionWarning pointing at the first caller outside mpyml."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, PrecisionWarning, stacklevel=level)


@dataclass(frozen=True)
class Family:
    name: str
    file_format: str
    options: dict  # option -> default, exactly the keyword arguments export() takes for this family
    export: Callable  # (estimator, ir, path, **options) -> stored model


@dataclass(frozen=True)
class Row:
    cls: str  # public import path of the class, e.g. "sklearn.ensemble.RandomForestClassifier"
    family: str
    converter: str  # "module:function" in mpyml: fitted estimator -> IR
    note: str = ""  # what the row covers, when less than every fitted instance

    @property
    def name(self) -> str:
        return self.cls.rsplit(".", 1)[1]

    @property
    def label(self) -> str:
        name = self.name if self.cls.startswith("sklearn.") else self.cls
        return name + (" (%s)" % self.note if self.note else "")

    def resolve(self):
        module, name = self.cls.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    def convert(self, estimator, **kwargs):
        module, function = self.converter.split(":")
        return getattr(importlib.import_module("." + module, __package__), function)(estimator, **kwargs)


_FOREST = "trees:forest_from_sklearn"
_LINEAR = "linear:linear_from_sklearn"
_MIXTURE = "mixture:mixture_from_sklearn"
_GB = "boosting:gradient_boosting_from_sklearn"
_HGB = "boosting:hist_gradient_boosting_from_sklearn"
_XGB = "boosting:xgboost_from_model"
_LGB = "boosting:lightgbm_from_model"

ROWS = (
    Row("sklearn.tree.DecisionTreeClassifier", "trees", _FOREST),
    Row("sklearn.tree.DecisionTreeRegressor", "trees", _FOREST),
    Row("sklearn.tree.ExtraTreeClassifier", "trees", _FOREST),
    Row("sklearn.tree.ExtraTreeRegressor", "trees", _FOREST),
    Row("sklearn.ensemble.RandomForestClassifier", "trees", _FOREST),
    Row("sklearn.ensemble.RandomForestRegressor", "trees", _FOREST),
    Row("sklearn.ensemble.ExtraTreesClassifier", "trees", _FOREST),
    Row("sklearn.ensemble.ExtraTreesRegressor", "trees", _FOREST),
    Row("sklearn.ensemble.BaggingClassifier", "trees", "ensembles:bagging_from_sklearn", "of decision trees"),
    Row("sklearn.ensemble.BaggingRegressor", "trees", "ensembles:bagging_from_sklearn", "of decision trees"),
    Row("sklearn.neighbors.KNeighborsClassifier", "neighbors", "neighbors:neighbors_from_sklearn"),
    Row("sklearn.neighbors.NearestNeighbors", "neighbors", "neighbors:neighbors_from_sklearn"),
    Row("sklearn.linear_model.LogisticRegression", "linear", _LINEAR),
    Row("sklearn.linear_model.RidgeClassifier", "linear", _LINEAR),
    Row("sklearn.linear_model.SGDClassifier", "linear", _LINEAR),
    Row("sklearn.svm.LinearSVC", "linear", _LINEAR),
    Row("sklearn.linear_model.LinearRegression", "linear", _LINEAR),
    Row("sklearn.linear_model.Ridge", "linear", _LINEAR),
    Row("sklearn.linear_model.SGDRegressor", "linear", _LINEAR),
    Row("sklearn.neural_network.MLPClassifier", "nets", "nets:net_from_sklearn"),
    Row("sklearn.neural_network.MLPRegressor", "nets", "nets:net_from_sklearn"),
    Row("keras.Sequential", "nets", "nets:net_from_keras"),
    Row("sklearn.ensemble.AdaBoostClassifier", "trees", _FOREST, "SAMME, of decision trees"),
    Row("sklearn.ensemble.GradientBoostingClassifier", "trees", _GB, "constant init"),
    Row("sklearn.ensemble.GradientBoostingRegressor", "trees", _GB, "constant init"),
    Row("sklearn.ensemble.HistGradientBoostingClassifier", "trees", _HGB, "numeric features"),
    Row("sklearn.ensemble.HistGradientBoostingRegressor", "trees", _HGB, "numeric features"),
    Row("xgboost.XGBClassifier", "trees", _XGB, "tree boosters"),
    Row("xgboost.XGBRegressor", "trees", _XGB, "tree boosters"),
    Row("xgboost.Booster", "trees", _XGB, "tree boosters"),
    Row("lightgbm.LGBMClassifier", "trees", _LGB, "numeric splits"),
    Row("lightgbm.LGBMRegressor", "trees", _LGB, "numeric splits"),
    Row("lightgbm.Booster", "trees", _LGB, "numeric splits"),
    Row("sklearn.ensemble.IsolationForest", "trees", "boosting:isolation_forest_from_sklearn"),
    Row("sklearn.mixture.GaussianMixture", "mixture", _MIXTURE),
    Row("sklearn.mixture.BayesianGaussianMixture", "mixture", _MIXTURE),
    Row("sklearn.naive_bayes.GaussianNB", "mixture", _MIXTURE),
    Row("sklearn.covariance.EllipticEnvelope", "mixture", _MIXTURE),
    Row("sklearn.cluster.KMeans", "mixture", _MIXTURE),
    Row("sklearn.cluster.MiniBatchKMeans", "mixture", _MIXTURE),
    Row("sklearn.pipeline.Pipeline", "pipeline", "pipeline:pipeline_from_sklearn"),
)

# Families a Pipeline's final estimator may belong to.
PIPELINE_FINAL = ("trees", "neighbors", "linear")


def find(estimator) -> Row | None:
    """The row of `estimator`'s exact class, or None."""
    cls = type(estimator)
    for row in ROWS:
        if row.name == cls.__name__ and cls is _resolved(row):
            return row
    return None


def supported(families=None) -> str:
    return ", ".join(row.label for row in ROWS if families is None or row.family in families)


def lookup(estimator, families=None, subject: str | None = None, role: str = "estimator") -> Row:
    """The row of `estimator`'s exact class (among `families`), or ExportError naming it and listing the supported."""
    row = find(estimator)
    if row is None or (families is not None and row.family not in families):
        cls = type(estimator)
        subclass = [r.name for r in ROWS if issubclass(cls, _resolved(r))] if isinstance(cls, type) else []
        if row is not None:  # listed, but in a family not taken here (e.g. a net at the end of a Pipeline)
            note = " (%s is exported on its own, not as a %s)" % (cls.__name__, role)
        else:
            note = " (a subclass of %s: exported only when listed itself)" % subclass[0] if subclass else ""
        raise ExportError("%s is not a supported %s%s; supported: %s"
                          % (subject or cls.__name__, role, note, supported(families)))
    return row


def _resolved(row: Row):
    """The row's class, or NoneType when its package is not imported: then no estimator can be an
    instance of it (this keeps a refusal from importing e.g. keras)."""
    if row.cls.split(".", 1)[0] not in sys.modules:
        return type(None)
    try:
        return row.resolve()
    except ImportError:
        return type(None)


def _check_fitted(estimator) -> None:
    """ExportError for an unfitted scikit-learn-style estimator (a Pipeline: each step), which the converters
    would otherwise meet as an AttributeError ('LogisticRegression' object has no attribute 'coef_')."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    for step in [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]:
        if not hasattr(step, "fit") or hasattr(step, "layers"):  # also 'passthrough' and None steps
            continue  # boosters, Keras models: not scikit-learn estimators
        try:
            check_is_fitted(step)
        except NotFittedError:
            raise ExportError("%s is not fitted: call fit() before exporting it" % type(step).__name__) from None


def _row(estimator) -> Row:
    """The row that converts `estimator`: its own, except for a Pipeline ending in an emlmixture
    estimator, which that estimator's converter takes whole (it folds the steps into the model)."""
    row = lookup(estimator)
    _check_fitted(estimator)
    if row.family == "pipeline":
        final = find(estimator.steps[-1][1])
        if final is not None and final.family == "mixture":
            return final
    return row


def convert(estimator):
    """The IR of a fitted supported estimator (see mpyml.convert)."""
    return _row(estimator).convert(estimator)


def export(estimator, path, **options):
    """See mpyml.export: looks the estimator up, checks the options against its family, writes the file."""
    row = _row(estimator)
    family = FAMILIES[row.family]
    if row.family == "pipeline":  # a pipeline takes the options of its final estimator
        ir = row.convert(estimator)
        allowed = pipeline_options(ir)
    else:
        allowed = family.options
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError("export() got option%s %s that %s (%s) does not take; it takes: %s"
                        % ("s" if len(unknown) > 1 else "", ", ".join(unknown), type(estimator).__name__,
                           family.file_format if row.family != "pipeline" else "this pipeline",
                           ", ".join(allowed) or "no options"))
    if row.family != "pipeline":
        ir = row.convert(estimator)
    return family.export(estimator, ir, path, **dict(allowed, **options))


def pipeline_options(ir) -> dict:
    """The options of a pipeline: those of its final estimator's family (input_dtype with trees)."""
    if isinstance(ir.final, trees.Forest):
        return dict(FAMILIES["trees"].options, input_dtype=None)
    if ir.final is None or isinstance(ir.final, linear.Linear):
        return dict(FAMILIES["linear"].options)
    return dict(FAMILIES["neighbors"].options)


# ---------------------------------------------------------------- feature dtype

def integer_thresholds(forest) -> bool:
    """True when every threshold is a half-integer (or integer) within int16 range: scikit-learn puts
    thresholds midway between training values, so the model was trained on integer features. A model
    without thresholds (one leaf per tree: a single class, constant features) shows nothing: False."""
    t = np.concatenate([tree.threshold[tree.left >= 0] for tree in forest.trees] + [np.zeros(0)])
    return bool(len(t) and np.all(2 * t == np.round(2 * t)) and np.all((t >= INT16_MIN) & (t <= INT16_MAX)))


def check_feature_dtype(feature_dtype: str) -> None:
    if feature_dtype not in FEATURE_DTYPES:
        raise ExportError("feature_dtype must be one of %s, got %r" % (FEATURE_DTYPES, feature_dtype))


INT16_WARNING = (
    "feature_dtype='int16': this model's thresholds are not all half-integers in -32768..32767, so it looks trained "
    "on non-integer features (ExtraTrees draw thresholds at random: for them this is a guess). The device takes "
    "integer features and compares them with floor(threshold): rows rounded to integers may be decided "
    "differently from scikit-learn on the unrounded rows. Train on integer features (scaled and rounded) or use "
    "feature_dtype='float32' (or 'auto').")


def forest_feature_dtype(forest, feature_dtype: str) -> str:
    """'auto' -> 'int16' when the thresholds show integer training features, else 'float32';
    an explicit 'int16' on a model with other thresholds warns (PrecisionWarning)."""
    check_feature_dtype(feature_dtype)
    if feature_dtype == "auto":
        return "int16" if integer_thresholds(forest) else "float32"
    if feature_dtype == "int16" and not integer_thresholds(forest):
        _warn(INT16_WARNING)
    return feature_dtype


def neighbors_feature_dtype(items: np.ndarray, feature_dtype: str) -> str:
    """'auto' -> 'int16' when every training row is whole numbers within int16 range, else 'float32'."""
    check_feature_dtype(feature_dtype)
    if feature_dtype != "auto":
        return feature_dtype
    whole = np.all(np.isfinite(items)) and np.array_equal(items, np.round(items))
    return "int16" if whole and items.min(initial=0) >= INT16_MIN and items.max(initial=0) <= INT16_MAX else "float32"


# ---------------------------------------------------------------- one export function per family


def _export_trees(estimator, forest, path, feature_dtype, voting):
    dtype = forest_feature_dtype(forest, feature_dtype)
    stored = trees.lower(forest, dtype=dtype, voting=voting)
    trees_format.save(stored, path)
    return stored


def _export_neighbors(estimator, ir, path, feature_dtype, novelty_percentile, steps=None):
    dtype = neighbors_feature_dtype(ir.items, feature_dtype)
    stored = neighbors.lower(ir, dtype=dtype, novelty_percentile=novelty_percentile)
    neighbors_format.save(stored, path, **({} if steps is None else {"steps": steps}))
    return stored


def _export_nets(estimator, net, path, quantize, representative_data):
    stored = nets.lower(net, dtype=quantize or "float32", representative_data=representative_data)
    nets_format.save(stored, path)
    return stored


def _export_linear(estimator, linear_ir, path):
    """A bare linear model: a pipeline of one step."""
    ir = pipeline.PipelineIR(n_features=linear_ir.n_features, final=linear_ir)
    return _export_pipeline(estimator, ir, path)


def _export_pipeline(estimator, ir, path, **options):
    """Per-feature steps in front of trees: folded into the thresholds (an mpyml-trees file). Steps with
    a linear model or no final estimator: an mpyml-linear file. Steps that mix features in front of
    trees or k-NN: run in float32 on the device from the steps section of a version 2 file.
    Features far from 0 for their spread (linear.offset_warning) warn (PrecisionWarning)."""
    if ir.final is None or isinstance(ir.final, linear.Linear):
        message = linear.offset_warning(ir)
        if message:
            _warn(message)
        stored = linear.lower(ir)
        linear_format.save(stored, path)
        return stored
    feature_dtype = options.get("feature_dtype", "auto")
    check_feature_dtype(feature_dtype)
    if isinstance(ir.final, trees.Forest) and pipeline.foldable(ir):
        return _export_folded(ir, path, feature_dtype, options["voting"], options["input_dtype"])
    if feature_dtype == "int16":
        raise ExportError("feature_dtype='int16': steps that mix features (PCA, TruncatedSVD) and steps in front of "
                          "k-NN run in float32 on the device; use feature_dtype='float32' or 'auto'")
    step_ir = pipeline.PipelineIR(n_features=ir.n_features, steps=ir.steps, feature_names=ir.feature_names)
    message = linear.offset_warning(step_ir)
    if message:
        _warn(message)
    steps = linear.lower(step_ir)
    if isinstance(ir.final, trees.Forest):
        model = trees.lower(ir.final, dtype="float32", voting=options["voting"])
        model.feature_names = ir.feature_names  # the steps' input
        trees_format.save(model, path, steps=steps)
    elif isinstance(ir.final, neighbors.Neighbors):
        model = _export_neighbors(None, ir.final, path, "float32", options["novelty_percentile"], steps=steps)
    else:
        raise ExportError("a pipeline ending in %s is not supported" % type(ir.final).__name__)
    return linear.StoredPipeline(steps=steps, model=model)


def _export_folded(ir, path, feature_dtype, voting, input_dtype):
    stated = input_dtype is not None
    input_dtype = pipeline.check_input_dtype(input_dtype) if stated else (pipeline.fitted_input_dtype(ir) or "float64")
    integer = pipeline.integer_trained(ir)
    if feature_dtype == "int16" and not integer:
        _warn(INT16_WARNING)
    dtype = feature_dtype if feature_dtype != "auto" else ("int16" if integer else "float32")
    folded = pipeline.fold_into_forest(ir, dtype, input_dtype)
    if not stated:
        other = "float32" if input_dtype == "float64" else "float64"
        alternative = pipeline.fold_into_forest(ir, dtype, other)
        differ = sum(int(np.sum(a.threshold != b.threshold)) for a, b in zip(folded.trees, alternative.trees))
        if differ:
            _warn("this pipeline decides %d thresholds differently on %s input than on %s input; the file "
                          "matches pipeline.predict on %s input (pass input_dtype='%s' if you predict on %s arrays)"
                          % (differ, input_dtype, other, input_dtype, other, other))
    stored = trees.lower(folded, dtype=dtype, voting=voting)
    stored.input_dtype = input_dtype
    stored.feature_names = ir.feature_names
    trees_format.save(stored, path)
    return stored


def _export_mixture(estimator, stored, path, X, outlier_percentile):
    mixture.set_threshold(stored, X, outlier_percentile, type(estimator).__name__)
    mixture_format.save(stored, path)
    return stored


FAMILIES = {
    "trees": Family("trees", "mpyml-trees", {"feature_dtype": "auto", "voting": "soft"}, _export_trees),
    "neighbors": Family("neighbors", "mpyml-neighbors", {"feature_dtype": "auto", "novelty_percentile": 99.0},
                        _export_neighbors),
    "nets": Family("nets", "mpyml-nets", {"quantize": None, "representative_data": None}, _export_nets),
    "linear": Family("linear", "mpyml-linear", {}, _export_linear),
    "mixture": Family("mixture", "mpyml-mixture", {"X": None, "outlier_percentile": 1.0}, _export_mixture),
    "pipeline": Family("pipeline", "a file per final estimator", {}, _export_pipeline),  # options: pipeline_options
}
