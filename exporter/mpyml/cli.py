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
    import joblib

    return joblib.load(path)


def _cmd_export(args) -> int:
    import mpyml

    stored = mpyml.export(_load_estimator(args.estimator), args.output, feature_dtype=args.dtype, voting=args.voting)
    _print_summary(stored, args.output)
    return 0


def _print_summary(stored, path) -> None:
    import os

    print("%s: %s%s, %d %s features, %d classes, %d trees, %d decision nodes, %d leaves"
          % (path, stored.kind, " (%s voting)" % stored.voting if stored.voting else "", stored.n_features,
             stored.dtype, stored.n_classes, stored.n_trees, stored.n_nodes, stored.n_leaves))
    print("  file %d bytes, device RAM for the model %d bytes; emltrees.new(%d, %d, %d) fits it"
          % (os.path.getsize(path), stored.ram_bytes(), stored.n_trees, stored.n_nodes, stored.n_leaves))


def _cmd_inspect(args) -> int:
    from . import linearfile, neighborsfile, netsfile, treesfile

    with open(args.model, "rb") as f:
        first = f.readline()
    if first.startswith(netsfile.MAGIC):
        print("%s: %s" % (args.model, netsfile.load(args.model).summary()))
        return 0
    first = first.decode("utf-8", "replace")
    if first.startswith(neighborsfile.FORMAT + ","):
        stored = neighborsfile.load(args.model)
        steps = getattr(stored, "steps", None)
        if steps is not None:  # version 2: pipeline steps before the items
            print("%s: steps %s, %d raw features -> %d; steps RAM %d B" % (
                args.model, " ".join(s.kind for s in steps.steps), steps.n_features, steps.steps[-1].n_out,
                steps.ram_bytes()))
            stored = stored.model
        print("%s: %s, %d %s items of %d features, k=%d, %s metric, %s weights; device RAM %d B; "
              "emlneighbors.new(%d, %d, %d) fits it" % (
                  args.model, stored.kind, stored.n_items, stored.dtype, stored.n_features, stored.k, stored.metric,
                  stored.weights, stored.ram_bytes(), stored.n_items, stored.n_features, stored.k))
        return 0
    if first.startswith(linearfile.FORMAT + ","):
        stored = linearfile.load(args.model)
        print("%s: %s, %d features -> %d outputs, steps %s, %d values; device RAM %d B; "
              "emllinear.new(%d, %d)" % (args.model, stored.kind, stored.n_features, stored.steps[-1].n_out,
                                         " ".join(s.kind for s in stored.steps), stored.n_values, stored.ram_bytes(),
                                         len(stored.steps), stored.n_values))
        return 0
    stored = treesfile.load(args.model)
    if hasattr(stored, "steps"):  # version 2: pipeline steps before the forest
        print("%s: steps %s, %d raw features -> %d, %d values; steps RAM %d B" % (
            args.model, " ".join(s.kind for s in stored.steps.steps), stored.steps.n_features,
            stored.steps.steps[-1].n_out, stored.steps.n_values, stored.steps.ram_bytes()))
        stored = stored.model
    _print_summary(stored, args.model)
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

    for name, func, help_text in (("export", _cmd_export, "export a fitted estimator saved with joblib"),
                                  ("verify", _cmd_verify, "export, predict X on the unix port, compare with scikit-learn")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("estimator", help="a fitted estimator saved with joblib.dump")
        if name == "export":
            p.add_argument("output", help="model file to write")
        else:
            p.add_argument("X", help="features to predict, a .npy file")
        p.add_argument("--dtype", default="int16", choices=["int16", "float32"])
        p.add_argument("--voting", default="soft", choices=["soft", "hard"])
        p.set_defaults(func=func)

    p = sub.add_parser("inspect", help="summarize a model file")
    p.add_argument("model")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("demo", help="train, export, build, run on the unix port, report")
    p.set_defaults(func=_cmd_demo)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
