"""mpyml: scikit-learn models exported for MicroPython native modules."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ExportError, FormatError, PrecisionWarning


def convert(estimator):
    """The intermediate representation of a fitted supported estimator: mpyml.trees.Forest (tree
    models, Bagging of trees), mpyml.neighbors.Neighbors, mpyml.linear.Linear, mpyml.nets.Net or
    mpyml.pipeline.PipelineIR. ExportError, naming the class and listing the supported ones, for any
    other (mpyml.registry holds the table; subclasses of supported classes are refused)."""
    from . import registry

    return registry.convert(estimator)


def export(estimator, path, **options):
    """Writes a fitted estimator to a model file for the device; returns the stored model.

    The estimator's exact class decides the family (mpyml.registry; `mpyml.registry.supported()`
    lists them); each family takes its own keyword options, and an option it does not take raises
    TypeError. Unsupported estimators raise ExportError naming the class.

    Tree models (DecisionTree*, ExtraTree*, RandomForest*, ExtraTrees*, Bagging* of decision trees)
    -> mpyml-trees file, mpyml.trees.StoredForest (n_nodes, n_leaves, ram_bytes(), and a numpy
    predict()/predict_proba() that mirror the device). Options:
      feature_dtype='auto': 'int16' (the device predicts from array('h')) when every threshold is a
        half-integer within int16 range (scikit-learn's thresholds on integer training features),
        else 'float32' (array('f')). An explicit 'int16' on a model whose thresholds show
        non-integer training features warns (mpyml.PrecisionWarning): the device then needs
        rounded features and can decide differently from scikit-learn on the unrounded rows.
      voting='soft': averages the trees' class probabilities exactly as scikit-learn's
        predict_proba; 'hard' takes the majority class (smaller file).

    KNeighborsClassifier, NearestNeighbors -> mpyml-neighbors file (mpyml.neighbors.StoredNeighbors).
    Options: feature_dtype='auto' ('int16' when every training row is whole numbers within int16
    range, else 'float32'); novelty_percentile=99.0: the novelty threshold is that percentile of
    the training rows' scores (None: no threshold).

    MLPClassifier, MLPRegressor, Keras Sequential -> mpyml-nets file for emlcnn (mpyml.nets.StoredNet).
    Options: quantize=None stores float32, 'int8' calibrates int8 scales on representative_data
    (typical input rows). stored.summary() reports the weights (flash) and arena (RAM) bytes.

    Linear models (LogisticRegression, LinearSVC, RidgeClassifier, SGDClassifier, LinearRegression,
    Ridge, SGDRegressor) -> a pipeline of one step: an mpyml-linear file (float32) for emllinear,
    mpyml.linear.StoredChain. No options.

    sklearn Pipelines (docs/formats.md, "Pipelines") take the options of their final estimator:
    scalers and column selection in front of a tree model are folded into its thresholds (an
    mpyml-trees file on raw features of feature_dtype; predict identical to the pipeline's on
    input_dtype arrays, see below). Steps with a linear model or no final estimator go to one
    mpyml-linear file (no options). PCA/TruncatedSVD in front of trees: an mpyml-trees version 2 file
    whose steps emltrees runs in float32 before the forest. Any steps in front of k-NN: an
    mpyml-neighbors version 2 file (float32 items in the steps' output space). Both return a
    mpyml.linear.StoredPipeline; feature_dtype must then be 'auto' or 'float32'.
      input_dtype (pipelines ending in trees): the dtype of the arrays the user gives
        pipeline.predict, 'float32' or 'float64' (or a dtype: integer input counts as float64, as
        scikit-learn converts it). scikit-learn's scalers compute in that dtype, so a value near a
        threshold can go either way depending on it. Default: 'float32' when a fitted scaler shows
        float32 training data (MinMaxScaler, MaxAbsScaler, RobustScaler keep it), else 'float64'; a
        PrecisionWarning says when the other dtype would decide some threshold differently. The
        stored model's input_dtype says which one the file matches.
    """
    from . import registry

    return registry.export(estimator, path, **options)


__all__ = ["ExportError", "FormatError", "PrecisionWarning", "convert", "export", "__version__"]
