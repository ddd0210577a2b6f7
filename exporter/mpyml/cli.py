"""The `mpyml` command: build natmods, export, inspect and verify models, run scripts on the unix port, deploy to a board."""

from __future__ import annotations

import argparse
import sys

from .errors import ExportError


def _count(n: int, word: str, plural: str | None = None) -> str:
    """'1 tree', '3 trees' ('1 class', '3 classes' with plural='classes')."""
    return "%d %s" % (n, word if n == 1 else plural or word + "s")


def _shown(path) -> str:
    """A path relative to the current folder when it is below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# mpyml.export's keyword options -> the flags that set them (_export_options is the other direction).
OPTION_FLAGS = {"feature_dtype": "--dtype", "voting": "--voting", "input_dtype": "--input-dtype",
                "novelty_percentile": "--novelty-percentile", "quantize": "--quantize",
                "representative_data": "--representative-data", "X": "--training-data",
                "outlier_percentile": "--outlier-percentile"}


def cli_message(text: str) -> str:
    """An ExportError's or PrecisionWarning's message (written for the Python API) in the CLI's words:
    `feature_dtype='float32'` -> `--dtype float32`, option lists ("it takes: feature_dtype, voting") as flags,
    and the unambiguous keyword names (those with an underscore) as flags wherever they stand."""
    import re

    names = "|".join(OPTION_FLAGS)
    text = re.sub(r"\b(%s)=(?:'([^']*)'|([\w.+-]+))" % names,
                  lambda m: "%s %s" % (OPTION_FLAGS[m[1]], m[2] if m[2] is not None else m[3]), text)
    text = re.sub(r"(export\(\) got options? |it takes: )(\w+(?:, \w+)*)",
                  lambda m: m[1].replace("export() ", "") + ", ".join(OPTION_FLAGS.get(n, n) for n in m[2].split(", ")),
                  text)
    return re.sub(r"\b(%s)\b" % "|".join(n for n in OPTION_FLAGS if "_" in n), lambda m: OPTION_FLAGS[m[1]], text)


def _use_micropython(args) -> None:
    """--micropython DIR: the MicroPython source tree to build with (as MPY_DIR)."""
    import os

    if getattr(args, "micropython", None):
        os.environ["MPY_DIR"] = os.path.abspath(args.micropython)


def _cmd_build(args) -> int:
    """Builds and prints a summary. With --arch all, an arch whose toolchain is missing is skipped
    (its message printed once); an arch asked for by name fails the command."""
    from . import build

    _use_micropython(args)
    everything = args.arch == ["all"]
    arches = list(build.ARCHES) if everything else args.arch
    built, failed, skipped, missing = {}, 0, {}, set()
    modules, features = args.module or build.NATMODS, None
    if args.for_files:
        if args.module and args.module != ["emltrees"]:
            print("mpyml build: --for builds emltrees only", file=sys.stderr)
            return 2
        from .errors import FormatError

        try:
            features = build.trees_features(args.for_files)
        except (FormatError, OSError) as error:
            print("mpyml build: --for: %s" % error, file=sys.stderr)
            return 1
        modules = ["emltrees"]
        print("emltrees trimmed for %s: %s" % (", ".join(args.for_files),
                                                ", ".join(features) or "hard voting on int16 features only"))
    results = build.build_all(arches, modules, out=args.out, progress=None, features=features)
    for (module, arch), result in results.items():
        if isinstance(result, build.ToolchainMissing) and everything:
            if arch not in skipped:
                skipped[arch] = result
                print("skipped %s: %s" % (arch, result), file=sys.stderr)
        elif isinstance(result, build.BuildError):
            failed += 1
            if arch not in missing:  # a missing toolchain: said once for the arch, not once per module
                print("FAILED %s for %s: %s" % (module, arch, result), file=sys.stderr)
            if isinstance(result, build.ToolchainMissing):
                missing.add(arch)
        else:
            built.setdefault(arch, []).append(module)
            print("built %s (%d bytes)" % (_shown(result), result.stat().st_size))
    summary = ["%s: %s" % (arch, _count(len(modules), "module")) for arch, modules in built.items()]
    summary += ["%s: skipped (toolchain missing)" % arch for arch in skipped]
    if failed:
        summary.append("%d failed" % failed)
    print("summary: " + "; ".join(summary))
    return 1 if failed else 0


def _load_estimator(path):
    """A fitted estimator or pipeline saved with joblib.dump or pickle, a Keras model file (.keras, .h5), or
    an IIR filter: scipy's sos array (or Q15 coefficients from mpyml.iir.quantize_q15) saved with numpy.save (.npy)."""
    if str(path).endswith(".npy"):
        import numpy as np

        return np.load(path)
    if str(path).endswith((".keras", ".h5")):
        import importlib.util
        import os

        # The nets extra installs torch as Keras 3's backend; Keras defaults to tensorflow.
        if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("tensorflow") is None:
            os.environ["KERAS_BACKEND"] = "torch"
        import keras

        return keras.models.load_model(path)
    import joblib

    return joblib.load(path)


class RowsFileError(ValueError):
    """A rows file (X.npy, --training-data, ...) that is not an array saved with numpy.save."""


def load_rows(path, what="X", shape="(n_rows, n_features)"):
    """The array numpy.save wrote to `path`; RowsFileError saying what the file must be otherwise."""
    import numpy as np

    must = "%s: %s must be a .npy file written by numpy.save (an array of shape %s)" % (path, what, shape)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as error:
        raise RowsFileError("%s: cannot read %s: %s" % (what, path, error.strerror or error)) from None
    if head != b"\x93NUMPY":
        raise RowsFileError("%s; it is not one (it starts with %r)" % (must, head))
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise RowsFileError("%s; numpy cannot read it: %s" % (must, error)) from None


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
        options["representative_data"] = load_rows(args.representative_data, "--representative-data")
    if args.training_data is not None:
        options["X"] = load_rows(args.training_data, "--training-data")
    if args.outlier_percentile is not None:
        options["outlier_percentile"] = float(args.outlier_percentile)
    return options


def _export(estimator, path, options):
    """mpyml.export, or for an IIR filter (a numpy array) mpyml.iir.save, which takes no options."""
    import numpy as np

    import mpyml

    if isinstance(estimator, np.ndarray):
        from . import iir

        if options:
            raise TypeError("an IIR filter (sos array) takes no export options, got %s" % ", ".join(sorted(options)))
        iir.save(estimator, path)
        return iir.load(path)
    return mpyml.export(estimator, path, **options)


def _cmd_export(args) -> int:
    import mpyml

    try:
        estimator = _load_estimator(args.estimator)
    except Exception as error:  # unpickling can raise anything; the user needs the file and the reason
        print("mpyml export: cannot load %s: %s: %s" % (args.estimator, type(error).__name__, error), file=sys.stderr)
        return 2
    try:
        stored = _export(estimator, args.output, _export_options(args))
    except (mpyml.ExportError, TypeError, ValueError) as error:
        print("mpyml export: %s" % cli_message(str(error)), file=sys.stderr)
        return 2
    for line in describe(stored, args.output):
        print(line)
    return 0


def describe(stored, path) -> list[str]:
    """Summary lines of a stored model of any family (exported, or read from a model file)."""
    import os

    import numpy as np

    from . import linear, mixture, neighbors, nets, trees

    if isinstance(stored, np.ndarray):  # an IIR filter
        q15 = np.issubdtype(stored.dtype, np.integer)
        return ["%s: IIR filter, %s, %s; file %d bytes; emliir.load() reads it" % (
            path, _count(len(stored), "second-order section"), "Q15 (array('h'))" if q15 else "float32 (array('f'))", os.path.getsize(path))]
    if isinstance(stored, mixture.StoredMixture):
        threshold = "" if stored.threshold is None else ", threshold %g" % stored.threshold
        return ["%s: %s (%s covariance), %s, %s%s; device RAM %d B; emlmixture.new(%d, %d) fits it"
                % (path, stored.kind, stored.covariance_type, _count(stored.n_features, "feature"),
                   _count(stored.n_components, "component"), threshold,
                   stored.ram_bytes(), stored.n_features, stored.n_components)]
    if isinstance(stored, linear.StoredPipeline):
        steps = stored.steps
        head = "%s: steps %s, %s -> %d, %s; steps RAM %d B" % (
            path, " ".join(s.kind for s in steps.steps), _count(steps.n_features, "raw feature"), steps.steps[-1].n_out,
            _count(steps.n_values, "value"),
            steps.ram_bytes())
        return [head] + ["  " + line for line in describe(stored.model, path)]
    if isinstance(stored, trees.StoredForest):
        classes = "" if stored.kind == trees.REGRESSOR else ", " + _count(stored.n_classes, "class", "classes")
        lines = ["%s: %s%s, %s%s, %s, %s, %s" % (
                     path, stored.kind, " (%s voting)" % stored.voting if stored.voting else "",
                     _count(stored.n_features, stored.dtype + " feature"), classes, _count(stored.n_trees, "tree"),
                     _count(stored.n_nodes, "decision node"), _count(stored.n_leaves, "leaf", "leaves")),
                 "  file %d bytes, device RAM for the model %d bytes; emltrees.new(%d, %d, %d) fits it" % (
                     os.path.getsize(path), stored.ram_bytes(), stored.n_trees, stored.n_nodes, stored.n_leaves)]
        if getattr(stored, "input_dtype", None):
            lines.append("  decides as pipeline.predict on %s input (steps folded into the thresholds)"
                         % stored.input_dtype)
        return lines
    if isinstance(stored, neighbors.StoredNeighbors):
        novelty = "no novelty threshold" if stored.threshold is None else "novelty threshold %g" % stored.threshold
        return ["%s: %s, %s of %s, k=%d, %s metric, %s weights, %s; device RAM %d B; "
                "emlneighbors.new(%d, %d, %d) fits it" % (
                    path, stored.kind, _count(stored.n_items, stored.dtype + " item"),
                    _count(stored.n_features, "feature"), stored.k, stored.metric,
                    stored.weights, novelty, stored.ram_bytes(), stored.n_items, stored.n_features, stored.k)]
    if isinstance(stored, linear.StoredChain):
        return ["%s: %s, %s -> %s, steps %s, %s; device RAM %d B; emllinear.new(%d, %d)" % (
            path, stored.kind, _count(stored.n_features, "feature"), _count(stored.steps[-1].n_out, "output"),
            " ".join(s.kind for s in stored.steps), _count(stored.n_values, "value"), stored.ram_bytes(), len(stored.steps), stored.n_values)]
    if isinstance(stored, nets.StoredNet):
        return ["%s: %s; file %d bytes" % (path, stored.summary(), os.path.getsize(path))]
    raise TypeError("not a stored model: %s" % type(stored).__name__)


def _model_file(path) -> str | None:
    """None when `path` is a readable file, else the message to print."""
    import os

    if not os.path.exists(path):
        return "no such file: %s" % path
    if not os.path.isfile(path):
        return "not a file: %s" % path
    return None


def _cmd_inspect(args) -> int:
    """Loads the file with its device module on the unix port (the same checks and messages as on a board),
    then prints the host's summary of it."""
    from . import build, device, verify

    problem = _model_file(args.model)
    if problem:
        print("mpyml inspect: %s" % problem, file=sys.stderr)
        return 2
    try:
        module = verify.file_module(args.model)
        _ensure_built([module], "x64", args.mpy)
        verify.check_file(args.model, verify.device_runner(mpy=args.mpy))
    except verify.ModelFileError as error:
        print("mpyml inspect: %s" % error, file=sys.stderr)
        return 1
    except (build.BuildError, device.DeviceError) as error:
        print("mpyml inspect: cannot check the file on the unix port: %s" % error, file=sys.stderr)
        return 2
    for line in describe(verify.host_load(args.model), args.model):
        print(line)
    print("  %s on the unix port loads it: OK" % module)
    return 0


def _ensure_built(modules, arch, mpy) -> None:
    """Builds the modules missing from <mpy>/<arch>_6.3/."""
    from . import build

    for module in modules:
        if not (build.module_dir(arch, mpy) / (module + ".mpy")).is_file():
            print("mpyml: building %s for %s" % (module, arch), file=sys.stderr)
            build.build(module, arch, mpy)


def _cmd_verify(args) -> int:
    """Given an estimator and rows: export, predict on the device, compare with the library. Given a model
    file alone: load it with its device module and report."""
    import os
    import tempfile

    import numpy as np

    from . import boards, build, device, registry, verify

    problem = _model_file(args.estimator) or (args.X and _model_file(args.X))
    if problem:
        print("mpyml verify: %s" % problem, file=sys.stderr)
        return 2
    run = verify.device_runner(board=args.board, mpy=args.mpy)
    arch = boards.BOARDS[args.board].arch if args.board else "x64"
    where = args.board or "the unix port"
    try:
        if args.X is None:
            try:
                module = verify.file_module(args.estimator)
            except verify.ModelFileError as error:
                print("mpyml verify: %s (give a model file alone, or an estimator and X.npy)" % error, file=sys.stderr)
                return 2
            _ensure_built([module], arch, args.mpy)
            verify.check_file(args.estimator, run)
            for line in describe(verify.host_load(args.estimator), args.estimator):
                print(line)
            print("  %s on %s loads it: OK" % (module, where))
            return 0
        estimator = _load_estimator(args.estimator)
        rows = load_rows(args.X)
        options = _export_options(args)
        with tempfile.TemporaryDirectory() as tmp:
            if isinstance(estimator, np.ndarray):
                _ensure_built(["emliir"], arch, args.mpy)
                report = verify.verify_iir(estimator, rows, os.path.join(tmp, "filter.iir"), run=run,
                                           name=os.path.basename(args.estimator))
            else:
                module = {"trees": "emltrees", "neighbors": "emlneighbors", "linear": "emllinear", "nets": "emlcnn",
                          "mixture": "emlmixture"}
                family = registry._row(estimator).family
                needed = list(module.values()) if family == "pipeline" else [module[family]]
                _ensure_built(needed, arch, args.mpy)
                report = verify.verify_file(estimator, rows, os.path.join(tmp, "model.out"), run=run,
                                            name=type(estimator).__name__, **options)
    except verify.ModelFileError as error:
        print("mpyml verify: %s" % error, file=sys.stderr)
        return 1
    except (ExportError, TypeError, ValueError) as error:
        print("mpyml verify: %s" % cli_message(str(error)), file=sys.stderr)
        return 2
    except (build.BuildError, device.DeviceError, boards.BoardError) as error:
        print("mpyml verify: cannot run on %s: %s" % (where, error), file=sys.stderr)
        return 2
    print("%s on %s" % (report.summary(), where))
    if args.confusion_matrix:
        if report.labels is None:
            print("mpyml verify: no confusion matrix: %s predicts no labels" % report.name, file=sys.stderr)
        else:
            if args.y is not None:
                try:
                    report.labels = (load_rows(args.y, "--y", "(n_rows,)"), report.labels[1])
                except RowsFileError as error:
                    print("mpyml verify: %s" % error, file=sys.stderr)
                    return 2
            verify.confusion_matrix_png(report, args.confusion_matrix,
                                        title="true label" if args.y is not None else None)
            print("confusion matrix: %s" % args.confusion_matrix)
    return 0 if report.ok else 1


def imported_modules(script) -> list[str]:
    """The mpyml native modules (build.NATMODS) that `import` or `from ... import` lines of the script name."""
    import re

    from .build import NATMODS

    with open(script, encoding="utf-8", errors="replace") as f:
        text = f.read()
    names = re.findall(r"^[ \t]*(?:import|from)[ \t]+([\w., \t]+)", text, re.M)
    return [m for m in NATMODS if any(m in re.split(r"[\s,.]+", line) for line in names)]


def _cmd_run(args) -> int:
    """Runs a script on the unix port with the built modules importable (MICROPYPATH)."""
    import os
    import subprocess

    from . import device

    problem = "give a script, or --print-path" if args.script is None and not args.print_path else (
        args.script and _model_file(args.script))
    if problem:
        print("mpyml run: %s" % problem, file=sys.stderr)
        return 2
    try:
        exe = device.micropython_exe()
    except device.DeviceError as error:
        print("mpyml run: %s" % error, file=sys.stderr)
        return 2
    if args.script:  # the mpyml modules the script imports are built when missing, as verify does
        from . import build

        try:
            _ensure_built(imported_modules(args.script), "x64", args.mpy)
        except build.BuildError as error:
            print("mpyml run: %s imports a module that is not built, and building it failed: %s"
                  % (args.script, error), file=sys.stderr)
            return 2
    here = [os.path.dirname(os.path.abspath(args.script))] if args.script else []
    path = device.micropypath(args.mpy, here + [os.path.abspath(p) for p in args.path or []])
    if args.print_path:
        print("MICROPYPATH=%s" % path)
        return 0
    return subprocess.run([exe, args.script, *args.args], env=dict(os.environ, MICROPYPATH=path)).returncode


# sys.implementation._mpy >> 10 (MicroPython's py/persistentcode.h) -> the natmod build a board loads.
# Armv7E-M loads Armv7-M code; a double-precision one (armv7emdp) loads armv7emsp code.
MPY_ARCHES = {2: "x64", 4: "armv6m", 5: "armv7m", 6: "armv7m", 7: "armv7emsp", 8: "armv7emsp", 10: "xtensawin",
              11: "rv32imc"}


def _mpremote(port, *commands, resume=False, timeout=600):
    """Runs mpremote (`python -m mpremote connect PORT [resume] COMMANDS...`); returns its stdout or raises
    RuntimeError with what it printed."""
    import subprocess

    cmd = [sys.executable, "-m", "mpremote", "connect", port] + (["resume"] if resume else []) + list(commands)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError("mpremote %s failed (%d): %s%s" % (commands[0], result.returncode,
                                                               result.stdout[-2000:], result.stderr[-2000:]))
    return result.stdout


def board_arch(port, resume=False) -> str:
    """The natmod architecture of the board on `port`, from sys.implementation._mpy."""
    out = _mpremote(port, "exec", "import sys; print('MPY', getattr(sys.implementation, '_mpy', 0))", resume=resume)
    value = int(out.split("MPY", 1)[1].split()[0])
    version, sub, arch = value & 0xFF, (value >> 8) & 3, value >> 10
    if (version, sub) != (6, 3):
        raise RuntimeError("the board's .mpy version is %d.%d; mpyml's modules are 6.3 (MicroPython 1.23 or later)"
                           % (version, sub))
    if arch not in MPY_ARCHES:
        raise RuntimeError("the board loads native code of architecture %d (sys.implementation._mpy=%d), for which "
                           "mpyml builds no modules; it builds: %s"
                           % (arch, value, ", ".join(sorted(set(MPY_ARCHES.values())))))
    return MPY_ARCHES[arch]


def _cmd_deploy(args) -> int:
    """Copies the modules the model files need (or --module ...; all when neither) and the model files to the
    board's current folder over mpremote, then imports the modules and loads each model file there."""
    import os

    from . import build, verify

    for path in args.models:
        problem = _model_file(path)
        if problem:
            print("mpyml deploy: %s" % problem, file=sys.stderr)
            return 2
    try:
        modules = list(dict.fromkeys((args.module or []) + [verify.file_module(p) for p in args.models]))
        modules = modules or list(build.NATMODS)
        arch = board_arch(args.port, resume=args.resume)
        print("board on %s loads %s modules" % (args.port, arch))
        _use_micropython(args)
        _ensure_built(modules, arch, args.mpy)
        files = [str(build.module_dir(arch, args.mpy) / (m + ".mpy")) for m in modules] + list(args.models)
        copies = []
        for path in files:  # one `fs cp SRC :NAME` per file, chained with mpremote's "+"
            copies += (["+"] if copies else []) + ["fs", "cp", path, ":" + os.path.basename(path)]
        _mpremote(args.port, *copies, resume=True)
        print("copied %s" % ", ".join(os.path.basename(f) for f in files))
        checks = ["import %s" % ", ".join(modules)]
        for path in args.models:
            name = os.path.basename(path)
            module = verify.file_module(path)
            try:
                stored = verify.host_load(path)
            except Exception:
                stored = None
            checks.append("P = %r" % name)
            checks.append(verify._LOADERS[module].format(**verify.capacities(path, stored)))
            checks.append("print('loaded', P, 'with', %r)" % module)
        out = _mpremote(args.port, "exec", "\n".join(checks), resume=True)
    except (verify.ModelFileError, build.BuildError, RuntimeError) as error:
        print("mpyml deploy: %s" % error, file=sys.stderr)
        return 1
    print("imported %s on the board" % ", ".join(modules))
    for line in out.splitlines():
        if line.startswith("loaded"):
            print(line)
    return 0


def _supported() -> str:
    from .registry import supported

    return supported()


def _cmd_demo(args) -> int:
    from . import demo

    return demo.main()


def _boards():
    from .boards import BOARDS

    return BOARDS


def _export_arguments(p) -> None:
    """The export options (mpyml.export's), shared by export and verify."""
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
    g = p.add_argument_group("mixtures (GaussianMixture, BayesianGaussianMixture)")
    g.add_argument("--training-data", metavar="X.npy", help="training rows: the anomaly threshold is learned on them")
    g.add_argument("--outlier-percentile", metavar="P", help="threshold at this percentile of their scores (default 1)")


MPY_HELP = ("folder of the built modules, DIR/<arch>_6.3/*.mpy (default: mpy/ of the source checkout mpyml runs "
            "from, else mpy/ in the current folder)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mpyml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build native modules into DIR/<arch>_6.3/ (see --out)")
    p.add_argument("--arch", nargs="+", default=["x64"], help="x64 armv6m armv7m armv7emsp rv32imc xtensawin, or all "
                   "(skips an arch whose toolchain is missing)")
    p.add_argument("--module", nargs="+", help="default: every module")
    p.add_argument("--out", metavar="DIR", help="write DIR/<arch>_6.3/<module>.mpy and a mip package.json (default: "
                   "mpy/ of the source checkout mpyml runs from, else mpy/ in the current folder)")
    p.add_argument("--micropython", metavar="DIR", help="MicroPython source tree to build with (1.24 or later; "
                   "default $MPY_DIR, else the 1.27 tree of a source checkout)")
    p.add_argument("--for", dest="for_files", nargs="+", metavar="MODEL_FILE",
                   help="build a trimmed emltrees with only what these mpyml-trees files need (smaller; it refuses "
                   "files that need more)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("export", help="export a fitted estimator, pipeline, Keras model or IIR filter to a model file",
                       description="Writes a model file for the device. The estimator's class decides the format "
                       "(mpyml.registry); each format takes its own options, and an option it does not take is an "
                       "error. Supported: " + _supported() + "; and IIR filters (scipy's sos array saved as .npy).")
    p.add_argument("estimator", help="a fitted estimator or pipeline saved with joblib.dump or pickle, "
                   "a Keras model file (.keras), or an IIR filter's sos array (.npy)")
    p.add_argument("output", help="model file to write")
    _export_arguments(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help="export, predict X on the unix port (or an emulated board), compare with the "
                       "library; or check a model file as the device does",
                       description="Given an estimator (joblib or pickle, a .keras file, or an IIR sos .npy) and rows "
                       "(X.npy; a 1-D signal for IIR): exports it with the options given, predicts every row with the "
                       "device module and compares with the library (scikit-learn, Keras, scipy). Given a model file "
                       "alone: loads it with its device module and reports. Exit 0 when the device agrees.")
    p.add_argument("estimator", help="estimator file, or a model file to check")
    p.add_argument("X", nargs="?", help="rows to predict, a .npy file")
    p.add_argument("--board", choices=sorted(_boards()), help="run on this emulated board (qemu) instead of the unix port")
    p.add_argument("--mpy", metavar="DIR", help=MPY_HELP)
    p.add_argument("--confusion-matrix", metavar="PNG", help="classifiers: write the confusion matrix of the device's "
                   "labels against the library's (or --y) as a PNG (needs matplotlib: pip install 'mpyml[plot]')")
    p.add_argument("--y", metavar="y.npy", help="true labels of X, for --confusion-matrix")
    _export_arguments(p)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("inspect", help="check a model file as the device does (on the unix port), then summarize it")
    p.add_argument("model")
    p.add_argument("--mpy", metavar="DIR", help=MPY_HELP)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("run", help="run a MicroPython script on the unix port with the built modules importable",
                       description="Runs `micropython SCRIPT ARGS` with MICROPYPATH set to the x64 modules, the "
                       "script's folder and --path folders.")
    p.add_argument("--mpy", metavar="DIR", help=MPY_HELP)
    p.add_argument("--path", action="append", metavar="DIR", help="another folder to import from (repeatable)")
    p.add_argument("--print-path", action="store_true", help="print the MICROPYPATH instead of running")
    p.add_argument("script", nargs="?")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("deploy", help="copy modules and model files to a board over mpremote, and check them there",
                       description="Finds the board's architecture (sys.implementation._mpy), copies the modules the "
                       "model files need (built when missing) and the model files into the board's current folder "
                       "with mpremote, then imports the modules and loads each model file on the board.")
    p.add_argument("models", nargs="*", help="model files (the modules: those they need, or all when none)")
    p.add_argument("--port", default="auto", help="the board's serial port as mpremote's connect takes it "
                   "(auto, /dev/ttyACM0, COM3, id:SERIAL, a pty, ...; default auto)")
    p.add_argument("--module", nargs="+", help="modules to copy besides those the model files need")
    p.add_argument("--mpy", metavar="DIR", help=MPY_HELP)
    p.add_argument("--micropython", metavar="DIR", help="MicroPython source tree for building missing modules")
    p.add_argument("--resume", action="store_true", help="do not soft-reset the board first (mpremote resume)")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser("demo", help="train, export, build, run on the unix port, report")
    p.set_defaults(func=_cmd_demo)

    args = parser.parse_args(argv)
    import warnings

    from .errors import PrecisionWarning

    def show_warning(message, category, filename, lineno, file=None, line=None):
        text = cli_message(str(message)) if issubclass(category, PrecisionWarning) else "%s: %s" % (
            category.__name__, message)
        print("mpyml %s: warning: %s" % (args.command, text), file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
