"""mpyml: scikit-learn models exported for MicroPython native modules."""

from __future__ import annotations

__version__ = "0.1.0"

from .trees import ExportError


def convert(estimator):
    """The intermediate representation of a fitted estimator or pipeline: mpyml.trees.Forest,
    mpyml.neighbors IR, mpyml.nets IR or mpyml.pipeline.PipelineIR."""
    from . import neighbors, nets, pipeline, trees

    if pipeline.is_pipeline(estimator):
        return pipeline.pipeline_from_sklearn(estimator)
    if _is_neighbors(estimator):
        return neighbors.neighbors_from_sklearn(estimator)
    if _is_net(estimator):
        return nets.convert(estimator)
    return trees.forest_from_sklearn(estimator)


def _is_neighbors(estimator) -> bool:
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    return isinstance(estimator, (KNeighborsClassifier, NearestNeighbors))


def _is_net(model) -> bool:
    return type(model).__name__ in ("MLPClassifier", "MLPRegressor", "Sequential")


def export(estimator, path, feature_dtype: str = "int16", voting: str = "soft", *, novelty_percentile: float | None = 99.0,
           quantize: str | None = None, representative_data=None):
    """Writes a fitted scikit-learn estimator to a model file for the device.

    feature_dtype: 'int16' (the device predicts from array('h')) or 'float32' (array('f')).
    voting: classifiers only; 'soft' averages the trees' class probabilities exactly
    as scikit-learn's predict_proba, 'hard' takes the majority class (smaller file).
    Returns the stored model (mpyml.trees.StoredForest): its n_nodes, n_leaves,
    ram_bytes() and a numpy predict()/predict_proba() that mirror the device.

    KNeighborsClassifier and NearestNeighbors go to the mpyml-neighbors format
    (mpyml.neighbors.StoredNeighbors; voting does not apply): novelty_percentile
    sets the novelty threshold to that percentile of the training rows' scores
    (None: no threshold).

    MLPClassifier/MLPRegressor and Keras Sequential models go to the mpyml-nets
    format for emlcnn (mpyml.nets.StoredNet; feature_dtype and voting do not
    apply): quantize=None stores float32, quantize='int8' calibrates int8 scales
    on representative_data (typical input rows). stored.summary() reports the
    weights (flash) and arena (RAM) bytes.

    sklearn Pipelines (docs/formats.md, "Pipelines"): scalers and column selection in
    front of a tree model are folded into its thresholds (an mpyml-trees file on raw
    features of feature_dtype; predict identical to the pipeline's). Steps with a linear
    model or no final estimator go to one mpyml-linear file for emllinear (float32;
    mpyml.linear.StoredChain). PCA/TruncatedSVD in front of trees: one mpyml-trees
    version 2 file whose steps emltrees runs in float32 before the forest. Any steps in
    front of kNN: one mpyml-neighbors version 2 file (float32 items in the steps' output
    space) whose steps emlneighbors runs before each search. Both return a
    mpyml.linear.StoredPipeline.
    """
    from . import pipeline

    if pipeline.is_pipeline(estimator):
        return _export_pipeline(estimator, path, feature_dtype, voting)
    if _is_net(estimator):
        from . import nets, netsfile

        stored = nets.lower(convert(estimator), dtype=quantize or "float32", representative_data=representative_data)
        netsfile.save(stored, path)
        return stored
    if _is_neighbors(estimator):
        from . import neighbors, neighborsfile

        stored = neighbors.lower(convert(estimator), dtype=feature_dtype, novelty_percentile=novelty_percentile)
        neighborsfile.save(stored, path)
        return stored
    from . import trees, treesfile

    stored = trees.lower(convert(estimator), dtype=feature_dtype, voting=voting)
    treesfile.save(stored, path)
    return stored


def _export_pipeline(estimator, path, feature_dtype, voting):
    """Pipelines: per-feature steps folded into a tree model's thresholds (an mpyml-trees file),
    or float32 steps with a linear model or no final estimator (an mpyml-linear file for emllinear)."""
    from . import linear, linearfile, pipeline, trees, treesfile

    ir = pipeline.pipeline_from_sklearn(estimator)
    if isinstance(ir.final, trees.Forest) and pipeline.foldable(ir):
        stored = trees.lower(pipeline.fold_into_forest(ir, feature_dtype), dtype=feature_dtype, voting=voting)
        stored.feature_names = getattr(estimator, "feature_names_in_", None)
        treesfile.save(stored, path)
        return stored
    if ir.final is None or isinstance(ir.final, linear.Linear):
        stored = linear.lower(ir)
        linearfile.save(stored, path)
        return stored
    # Steps that mix features run in float32 on the device before the estimator, from the steps
    # section of an mpyml-trees or mpyml-neighbors version 2 file.
    from . import neighbors, neighborsfile

    steps = linear.lower(pipeline.PipelineIR(n_features=ir.n_features, steps=ir.steps))
    if isinstance(ir.final, trees.Forest):
        model = trees.lower(ir.final, dtype="float32", voting=voting)
        model.feature_names = getattr(estimator, "feature_names_in_", None)  # the steps' input
        treesfile.save(model, path, steps=steps)
        return linear.StoredPipeline(steps=steps, model=model)
    model = neighbors.lower(ir.final, dtype="float32", novelty_percentile=None)
    neighborsfile.save(model, path, steps=steps)
    return linear.StoredPipeline(steps=steps, model=model)


__all__ = ["ExportError", "convert", "export", "__version__"]
