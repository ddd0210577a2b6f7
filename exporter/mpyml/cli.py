"""The `mpyml` command: build natmods, export and inspect models, verify them on the unix port."""

from __future__ import annotations

import argparse
import sys


def _cmd_build(args) -> int:
    """Builds and prints a summary. With --arch all, an arch whose toolchain is missing is skipped
    (its message printed once); an arch asked for by name fails the command."""
    from . import build

    everything = args.arch == ["all"]
    arches = list(build.ARCHES) if everything else args.arch
    built, failed, skipped = {}, 0, {}
    for (module, arch), result in build.build_all(arches, args.module or build.NATMODS).items():
        if everything and isinstance(result, build.ToolchainMissing):
            if arch not in skipped:
                skipped[arch] = result
                print("skipped %s: %s" % (arch, result), file=sys.stderr)
        elif isinstance(result, build.BuildError):
            failed += 1
            print("FAILED %s for %s: %s" % (module, arch, result), file=sys.stderr)
        else:
            built.setdefault(arch, []).append(module)
            print("built %s (%d bytes)" % (result.relative_to(build.REPO), result.stat().st_size))
    summary = ["%s: %d modules" % (arch, len(modules)) for arch, modules in built.items()]
    summary += ["%s: skipped (toolchain missing)" % arch for arch in skipped]
    if failed:
        summary.append("%d failed" % failed)
    print("summary: " + "; ".join(summary))
    return 1 if failed else 0


def _load_estimator(path):
    """A fitted estimator or pipeline saved with joblib.dump or pickle, or a Keras model file (.keras, .h5)."""
    if str(path).endswith((".keras", ".h5")):
        import keras

        return keras.models.load_model(path)
    import joblib

    return joblib.load(path)


def _export_options(args) -> dict:
    """The options the user gave (the family checks them: one it does not take is an error)."""
    options = {}
    if args.dtype is not None:
        options["feature_dtype"] = args.dtype
    if args.voting is not None:
        options["voting"] = args.voting
    if args.novelty_percentile is not None:
        text = args.novelty_percentile.lower()
        options["novelty_percentile"] = None if text == "none" else float(text)
    if args.input_dtype is not None:
        options["input_dtype"] = args.input_dtype
    if args.quantize is not None:
        options["quantize"] = None if args.quantize == "float32" else args.quantize
    if args.representative_data is not None:
        import numpy as np

        options["representative_data"] = np.load(args.representative_data)
    return options


def _cmd_export(args) -> int:
    import mpyml

    try:
        estimator = _load_estimator(args.estimator)
    except Exception as error:  # unpickling can raise anything; the user needs the file and the reason
        print("mpyml export: cannot load %s: %s: %s" % (args.estimator, type(error).__name__, error), file=sys.stderr)
        return 2
    try:
        stored = mpyml.export(estimator, args.output, **_export_options(args))
    except (mpyml.ExportError, TypeError) as error:
        print("mpyml export: %s" % error, file=sys.stderr)
        return 2
    for line in describe(stored, args.output):
        print(line)
    return 0


def describe(stored, path) -> list[str]:
    """Summary lines of a stored model of any family (exported, or read from a model file)."""
    import os

    from . import linear, neighbors, nets, trees

    if isinstance(stored, linear.StoredPipeline):
        steps = stored.steps
        head = "%s: steps %s, %d raw features -> %d, %d values; steps RAM %d B" % (
            path, " ".join(s.kind for s in steps.steps), steps.n_features, steps.steps[-1].n_out, steps.n_values,
            steps.ram_bytes())
        return [head] + ["  " + line for line in describe(stored.model, path)]
    if isinstance(stored, trees.StoredForest):
        lines = ["%s: %s%s, %d %s features, %d classes, %d trees, %d decision nodes, %d leaves" % (
                     path, stored.kind, " (%s voting)" % stored.voting if stored.voting else "", stored.n_features,
                     stored.dtype, stored.n_classes, stored.n_trees, stored.n_nodes, stored.n_leaves),
                 "  file %d bytes, device RAM for the model %d bytes; emltrees.new(%d, %d, %d) fits it" % (
                     os.path.getsize(path), stored.ram_bytes(), stored.n_trees, stored.n_nodes, stored.n_leaves)]
        if getattr(stored, "input_dtype", None):
            lines.append("  decides as pipeline.predict on %s input (steps folded into the thresholds)"
                         % stored.input_dtype)
        return lines
    if isinstance(stored, neighbors.StoredNeighbors):
        novelty = "no novelty threshold" if stored.threshold is None else "novelty threshold %g" % stored.threshold
        return ["%s: %s, %d %s items of %d features, k=%d, %s metric, %s weights, %s; device RAM %d B; "
                "emlneighbors.new(%d, %d, %d) fits it" % (
                    path, stored.kind, stored.n_items, stored.dtype, stored.n_features, stored.k, stored.metric,
                    stored.weights, novelty, stored.ram_bytes(), stored.n_items, stored.n_features, stored.k)]
    if isinstance(stored, linear.StoredChain):
        return ["%s: %s, %d features -> %d outputs, steps %s, %d values; device RAM %d B; emllinear.new(%d, %d)" % (
            path, stored.kind, stored.n_features, stored.steps[-1].n_out, " ".join(s.kind for s in stored.steps),
            stored.n_values, stored.ram_bytes(), len(stored.steps), stored.n_values)]
    if isinstance(stored, nets.StoredNet):
        return ["%s: %s; file %d bytes" % (path, stored.summary(), os.path.getsize(path))]
    raise TypeError("not a stored model: %s" % type(stored).__name__)


def _cmd_inspect(args) -> int:
    from . import linearfile, neighborsfile, netsfile, treesfile

    with open(args.model, "rb") as f:
        first = f.readline()
    if first.startswith(netsfile.MAGIC):
        stored = netsfile.load(args.model)
    else:
        first = first.decode("utf-8", "replace")
        if first.startswith(neighborsfile.FORMAT + ","):
            stored = neighborsfile.load(args.model)
        elif first.startswith(linearfile.FORMAT + ","):
            stored = linearfile.load(args.model)
        else:
            stored = treesfile.load(args.model)
    for line in describe(stored, args.model):
        print(line)
    return 0


def _cmd_verify(args) -> int:
    import tempfile

    import numpy as np

    from . import device, verify

    estimator = _load_estimator(args.estimator)
    X = np.load(args.X)
    with tempfile.TemporaryDirectory() as tmp:
        report = verify.verify_trees(estimator, X, "%s/model.csv" % tmp, feature_dtype=args.dtype, voting=args.voting,
                                     run=device.predict_trees)
    print(report.summary())
    return 0 if report.ok else 1


def _supported() -> str:
    from .registry import supported

    return supported()


def _cmd_demo(args) -> int:
    from . import demo

    return demo.main()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mpyml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build native modules into mpy/<arch>_6.3/")
    p.add_argument("--arch", nargs="+", default=["x64"], help="x64 armv6m armv7m armv7emsp rv32imc xtensawin, or all (skips an arch whose toolchain is missing)")
    p.add_argument("--module", nargs="+", help="default: every module")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("export", help="export a fitted estimator, pipeline or Keras model to a model file",
                       description="Writes a model file for the device. The estimator's class decides the format "
                       "(mpyml.registry); each format takes its own options, and an option it does not take is an "
                       "error. Supported: " + _supported())
    p.add_argument("estimator", help="a fitted estimator or pipeline saved with joblib.dump or pickle, "
                   "or a Keras model file (.keras)")
    p.add_argument("output", help="model file to write")
    g = p.add_argument_group("trees, k-NN and pipelines")
    g.add_argument("--dtype", choices=["auto", "int16", "float32"],
                   help="feature dtype on the device (default auto: int16 when the model shows integer features)")
    g.add_argument("--voting", choices=["soft", "hard"], help="tree classifiers (default soft)")
    g.add_argument("--input-dtype", choices=["float32", "float64"],
                   help="pipelines folded into trees: the dtype of the arrays given to pipeline.predict "
                   "(default: float32 if a fitted scaler shows float32 training data, else float64)")
    g.add_argument("--novelty-percentile", metavar="P",
                   help="k-NN: novelty threshold at this percentile of the training scores, or none (default 99)")
    g = p.add_argument_group("neural networks (MLP, Keras)")
    g.add_argument("--quantize", choices=["float32", "int8"], help="weights (default float32)")
    g.add_argument("--representative-data", metavar="X.npy", help="int8: typical input rows to calibrate on")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help="export, predict X on the unix port, compare with scikit-learn")
    p.add_argument("estimator", help="a fitted estimator saved with joblib.dump")
    p.add_argument("X", help="features to predict, a .npy file")
    p.add_argument("--dtype", default="auto", choices=["auto", "int16", "float32"])
    p.add_argument("--voting", default="soft", choices=["soft", "hard"])
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("inspect", help="summarize a model file")
    p.add_argument("model")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("demo", help="train, export, build, run on the unix port, report")
    p.set_defaults(func=_cmd_demo)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
