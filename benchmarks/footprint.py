"""Benchmark: the footprint of every native module: flash (.mpy bytes) and RAM after import.

For every module and architecture: the .mpy's bytes as `mpyml build` writes it. For every
emulated board (mpyml.boards, MicroPython 1.27 firmware under qemu): heap bytes that
`import <module>` takes (`gc.mem_alloc()` after `gc.collect()`, before and after; on a
board the native code and the module's Python parts live in the heap). Beside the Cortex-M3
column: emlearn-micropython's figures as stated in issue 13 (Cortex-M3, MicroPython 1.27
firmware, same method, measured the week of 2026-11-23); they are reference numbers, not
built here. Then each .mpy beside emlearn-micropython's published .mpy of the same architecture
(EMLEARN_MPY, with its source) and the ratio.

Then, for the Cortex-M3 (armv7m, MPS2_AN385) and Cortex-M0 (armv6m, MICROBIT), what each
module's RAM after import is spent on, computed from the build (breakdown()): every function of
the module's object file, by the source file that defines it (read from the debug information of
the same object compiled again with -g, build.debug_objects), grouped as the record reader
(mpyml_records_glue.h, mpyml_text.h, mpyml_steps_glue.h), the portable core (the family's
header, mpyml_math.h, mpyml_f64.h, mpyml_common.h) and the glue (the module's .c, mpyml_glue.h, inline
functions of MicroPython's dynruntime.h); the string constants (.rodata.str* and the
error-message table .rodata.mpyml_messages: messages, almost all); constant tables, data, bss
and alignment; the libgcc soft-float members linked (their sections); the .mpy of the module's
Python parts (the .py files of its Makefile's SRC); and the rest of the RAM after import (the
module's type and function objects, dicts and interned names: RAM minus all the above).

    python benchmarks/footprint.py [--json PATH] [--modules emliir,emlfft] [--boards MPS2_AN385]
                                   [--no-breakdown] [--functions N]

Then model RAM (model_ram()): the heap a loaded model keeps on each board, for the model each
module's benchmark uses: the digits forest of benchmarks/trees.py and issue 13 (emltrees), the
300 x 64 int16 k-NN of benchmarks/neighbors.py (emlneighbors), the order-4 Butterworth bandpass
of benchmarks/iir.py (emliir), FFT(1024) of benchmarks/fft.py (emlfft), the StandardScaler +
PCA(8) steps of benchmarks/pipeline.py (emllinear), the MLP of benchmarks/cnn.py (emlcnn) and the
GaussianMixture(4, full) of benchmarks/anomaly.py (emlmixture). Each is measured in its own board
run (a board never frees a native module's code) as `gc.mem_alloc()` after `gc.collect()` across
a second load after unload() (emltrees, emllinear, emlmixture), or, for a module without unload
(emlneighbors, emliir, emlfft) or one that allocates at new() (emlcnn's arena), across making and
loading a second object after a first, so that one-time allocations are left out. Beside it:
the exporter's estimate (ram_bytes() where the exporter has one; it counts the model block, not
the object) and emlearn_trees' 9.4 KB for the digits forest with hard voting (issue 13's
reference figure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))

from mpyml import boards, build  # noqa: E402

ARCHES = ("x64", "armv6m", "armv7m", "armv7emsp", "rv32imc", "xtensawin")
BOARDS = ("MPS2_AN385", "MPS2_AN500", "MICROBIT", "VIRT_RV32")
# emlearn-micropython, RAM after import on Cortex-M3 (issue 13's table; 2026-11-23 week).
EMLEARN_M3 = {"emltrees": ("emlearn_trees", 3968), "emliir": ("emlearn_iir", 2464),
              "emlfft": ("emlearn_fft", 2976), "emlneighbors": ("emlearn_neighbors", 2448),
              "emllinear": ("emlearn_linreg", 4768)}
# emlearn-micropython's published .mpy bytes per architecture (ABI 6.3): `builds/latest/<arch>_6.3/` on
# its gh-pages branch, commit e2417ed of 2025-12-13 (read 2026-11-30); reference numbers, not built here.
EMLEARN_MPY = {
    "emltrees": ("emlearn_trees", {"x64": 3038, "armv6m": 4732, "armv7m": 3948, "armv7emsp": 2503,
                                   "rv32imc": 5023, "xtensawin": 2536}),
    "emlfft": ("emlearn_fft", {"x64": 1986, "armv6m": 4502, "armv7m": 2918, "armv7emsp": 1669,
                               "rv32imc": 4487, "xtensawin": 1551}),
    "emliir": ("emlearn_iir", {"x64": 1412, "armv6m": 4408, "armv7m": 2388, "armv7emsp": 1123,
                               "rv32imc": 3897, "xtensawin": 1060}),
    "emlneighbors": ("emlearn_neighbors", {"x64": 2962, "armv6m": 2369, "armv7m": 2349, "armv7emsp": 2361,
                                           "rv32imc": 2784, "xtensawin": 2173}),
    "emllinear": ("emlearn_linreg", {"x64": 3662, "armv6m": 6898, "armv7m": 4510, "armv7emsp": 2982,
                                     "rv32imc": 7138, "xtensawin": 2929}),
}

# Breakdown: which group each source file's functions belong to (by file name); a function defined
# in any other file is an error (tests/test_footprint.py checks every symbol is assigned).
READER = ("mpyml_records_glue.h", "mpyml_text.h", "mpyml_steps_glue.h")
CORE = ("mpyml_common.h", "mpyml_math.h", "mpyml_f64.h", "mpyml_fft.h", "mpyml_iir.h", "mpyml_linear.h", "mpyml_mixture.h",
        "mpyml_neighbors.h", "mpyml_nets.h", "mpyml_trees.h")
GLUE_SHARED = ("mpyml_glue.h", "dynruntime.h")
GROUPS = ("record reader", "core", "glue", "messages", "tables, data, bss", "libgcc", "Python parts", "rest of RAM")
BREAKDOWN_BOARDS = {"armv7m": "MPS2_AN385", "armv6m": "MICROBIT"}

_SCRIPT = "import gc\ngc.collect()\nb = gc.mem_alloc()\nimport {m}\ngc.collect()\nprint('RAM', gc.mem_alloc() - b)\n"


def flash(modules, arches) -> dict:
    """{(module, arch): .mpy bytes, or None where the arch's compiler is missing}."""
    sizes = {}
    for arch in arches:
        for module in modules:
            try:
                sizes[(module, arch)] = build.build(module, arch).stat().st_size
            except build.ToolchainMissing:
                sizes[(module, arch)] = None
    return sizes


def import_ram(modules, board_names) -> dict:
    """{(module, board): heap bytes of `import module` on the emulated board}."""
    ram = {}
    for board in board_names:
        arch = boards.BOARDS[board].arch
        for module in modules:
            path = build.build(module, arch)
            out = boards.run(board, _SCRIPT.format(m=module), modules={module + ".mpy": path})
            ram[(module, board)] = int(out.split("RAM")[1].split()[0])
    return ram


def _sections(tool_prefix: str, obj: Path) -> dict:
    """{section name: bytes} of an object file (`size -A`), allocated sections only."""
    out = subprocess.run([tool_prefix + "size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith((".text", ".rodata", ".data", ".bss")):
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def _functions(tool_prefix: str, obj: Path) -> dict:
    """{function name: (bytes, defining file or None)} of an object file: `nm -S -l` (the file comes
    from the debug information, when the object has it)."""
    out = subprocess.run([tool_prefix + "nm", "-S", "-l", "--defined-only", str(obj)],
                         capture_output=True, text=True, check=True).stdout
    functions = {}
    for line in out.splitlines():
        fields, _, where = line.partition("\t")
        parts = fields.split()
        if len(parts) == 4 and parts[2] in "tT":
            functions[parts[3]] = (int(parts[1], 16), where.rsplit(":", 1)[0] if where else None)
    return functions


def group_of(module: str, source_file: str) -> str:
    """The breakdown group of a function defined in source_file (a path); ValueError for a file in no group."""
    name = Path(source_file).name
    if name in READER:
        return "record reader"
    if name in CORE:
        return "core"
    if name in GLUE_SHARED or name == module + ".c":
        return "glue"
    raise ValueError("%s: a function defined in %s, which no footprint group names" % (module, source_file))


def python_parts(module: str, arch: str) -> list:
    """The .mpy files the build compiled from the .py files in the module's SRC (its Makefile)."""
    makefile = (build.NATMODS_DIR / module / "Makefile").read_text()
    sources = next(line.split("=", 1)[1].split() for line in makefile.splitlines() if line.startswith("SRC ="))
    work = build.BUILD_DIR / arch / module
    return [(work / src).with_suffix(".mpy") for src in sources if src.endswith(".py")]


def breakdown(module: str, arch: str = "armv7m", ram: int | None = None) -> dict:
    """{group: bytes} of the module built for arch (GROUPS; "rest of RAM" only when ram, the
    heap bytes of its import, is given), plus "functions": {group: [(bytes, name), ...]}.
    Checks that the -g object has the same functions of the same sizes as the built one."""
    prefix = build.ARCHES[arch][0]
    build.build(module, arch)
    work = build.BUILD_DIR / arch / module
    built = sorted(p for p in work.glob("*.o"))
    debug = build.debug_objects(module, arch)
    if [p.name for p in built] != [p.name for p in debug]:
        raise RuntimeError("%s: objects %s differ from the debug build's %s" % (module, built, debug))
    sizes = dict.fromkeys(GROUPS[:-1], 0)
    functions = {g: [] for g in ("record reader", "core", "glue")}
    for obj, dbg in zip(built, debug):
        plain, located = _functions(prefix, obj), _functions(prefix, dbg)
        if {k: v[0] for k, v in plain.items()} != {k: v[0] for k, v in located.items()}:
            raise RuntimeError("%s: %s compiled with -g has other functions or sizes" % (module, obj.name))
        for name, (nbytes, where) in located.items():
            if where is None:
                raise ValueError("%s: function %s has no source file in the debug information" % (module, name))
            group = group_of(module, where)
            sizes[group] += nbytes
            functions[group].append((nbytes, name))
        sections = _sections(prefix, obj)
        strings = sum(v for k, v in sections.items() if k.startswith((".rodata.str", ".rodata.mpyml_messages")))
        sizes["messages"] += strings
        sizes["tables, data, bss"] += sum(sections.values()) - strings - sum(n for n, _ in plain.values())
    for member in sorted((work / "libgcc").glob("*.o")):
        sizes["libgcc"] += sum(_sections(prefix, member).values())
    sizes["Python parts"] = sum(p.stat().st_size for p in python_parts(module, arch))
    if ram is not None:
        sizes["rest of RAM"] = ram - sum(sizes.values())
    for group in functions:
        functions[group].sort(reverse=True)
    sizes["functions"] = functions
    return sizes


def breakdown_table(arch, parts) -> str:
    """Markdown: per module (parts: {module: breakdown()}), bytes per GROUPS column and the RAM after import."""
    head = ["module (%s, %s)" % (arch, BREAKDOWN_BOARDS[arch])] + list(GROUPS) + ["RAM after import"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for m, p in parts.items():
        lines.append("| " + " | ".join(["`%s`" % m] + [str(p[g]) for g in GROUPS] + [str(sum(p[g] for g in GROUPS))]) + " |")
    return "\n".join(lines)


def table(modules, sizes, ram, arches, board_names) -> str:
    head = ["module"] + [".mpy %s" % a for a in arches] + ["RAM %s" % b for b in board_names] + ["emlearn-micropython M3 RAM"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for m in modules:
        ref = EMLEARN_M3.get(m)
        cells = [("`%s`" % m)]
        cells += ["—" if sizes.get((m, a)) is None else str(sizes[(m, a)]) for a in arches]
        cells += [str(ram[(m, b)]) for b in board_names]
        cells.append("%s %d" % ref if ref else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


EMLEARN_DIGITS_FOREST_RAM = 9400  # emlearn_trees, the same forest with hard voting (issue 13)
RELOAD = "a second load after unload()"
SECOND_OBJECT = "a second object (new + load) after a first"
# How each module's model RAM is measured: across a second load into the same object after unload()
# (the module frees the model block and keeps the object), or, where the module has no unload or
# allocates at new() (emlcnn's arena), across making and loading a second object after a first.
_MEASURE = {
    RELOAD: """def measure():
    import {module}
    m = {new}
    {module}.load_model(m, {file!r})
    m.unload()
    gc.collect()
    b = gc.mem_alloc()
    {module}.load_model(m, {file!r})
    gc.collect()
    return gc.mem_alloc() - b
""",
    SECOND_OBJECT: """def measure():
    import {module}
    def make():
        m = {new}
        {load}
        return m
    m = make()
    m = None
    gc.collect()
    b = gc.mem_alloc()
    m = make()
    gc.collect()
    return gc.mem_alloc() - b
""",
}


@dataclass
class Model:
    """One benchmark model: its description, module, files for the board, how its RAM is measured,
    the code that makes it on the device (new, and load for SECOND_OBJECT), the exporter's estimate."""
    title: str
    module: str
    file: str
    how: str
    new: str
    load: str = "pass"
    estimate: int | None = None
    reference: str = "—"


def benchmark_models(tmp: Path, modules) -> tuple[list, dict]:
    """The benchmarks' models of the given modules, exported into tmp: ([Model], {file name: path})."""
    import warnings

    import mpyml
    from mpyml import fft, iir, mixture, nets
    from mpyml.formats import linear as linear_format, mixture as mixture_format, nets as nets_format
    from scipy import signal
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import cnn
    import neighbors
    from mpyml.vibration import condition_monitoring

    models = []
    X, y = load_digits(return_X_y=True)
    if "emltrees" in modules:  # benchmarks/trees.py, issue 13
        forest = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1).fit(X, y)
        stored = mpyml.export(forest, tmp / "digits.csv", feature_dtype="int16")
        models.append(Model("digits forest, 10 trees, max_leaf_nodes=100, int16, soft voting", "emltrees",
                            "digits.csv", RELOAD, "emltrees.new(10, 2000, 1000)", estimate=stored.ram_bytes(),
                            reference="emlearn_trees %d (hard voting)" % EMLEARN_DIGITS_FOREST_RAM))
    if "emlneighbors" in modules:  # benchmarks/neighbors.py, 300 items x 64 features
        n_items, n_features = 300, 64
        Xn, yn, _ = neighbors.make_data(n_items, n_features, seed=n_items + n_features)
        knn = KNeighborsClassifier(n_neighbors=neighbors.K).fit(Xn, yn)
        stored = mpyml.export(knn, tmp / "knn.csv", feature_dtype="int16", novelty_percentile=None)
        models.append(Model("k-NN, 300 items x 64 int16 features, k=5", "emlneighbors", "knn.csv", SECOND_OBJECT,
                            "emlneighbors.new(%d, %d, %d)" % (n_items, n_features, neighbors.K),
                            "emlneighbors.load_model(m, 'knn.csv')", estimate=stored.ram_bytes()))
    if "emliir" in modules:  # benchmarks/iir.py
        iir.save(signal.butter(4, [0.1, 0.3], btype="bandpass", output="sos"), tmp / "iir.txt")
        models.append(Model("IIR, Butterworth bandpass order 4 (4 sections), float32", "emliir", "iir.txt",
                            SECOND_OBJECT, "emliir.load('iir.txt')"))
    if "emlfft" in modules:  # benchmarks/fft.py, the larger size
        models.append(Model("FFT(1024)", "emlfft", "", SECOND_OBJECT, "emlfft.FFT(1024)", estimate=fft.ram_bytes(1024)))
    if "emllinear" in modules:  # benchmarks/pipeline.py: its StandardScaler + PCA(8) steps
        X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42)
        pipe = make_pipeline(StandardScaler(), PCA(8, random_state=0),
                             RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1)).fit(X_train, y_train)
        stored = mpyml.export(pipe, tmp / "pipeline.csv")
        linear_format.save(stored.steps, tmp / "steps.csv")
        models.append(Model("pipeline steps: StandardScaler + PCA(8) on digits", "emllinear", "steps.csv", RELOAD,
                            "emllinear.new(4, 100000)", estimate=stored.steps.ram_bytes()))
    if "emlcnn" in modules:  # benchmarks/cnn.py: its MLP, float32
        Xtr, _, ytr, _ = cnn.digits()
        net = nets.lower(cnn.mlp_net(Xtr, ytr)[0])
        nets_format.save(net, tmp / "mlp.bin")
        models.append(Model("MLPClassifier (32, 16) on digits, float32 (weights %d B, arena %d B)"
                            % (net.weights_bytes, net.arena_bytes), "emlcnn",
                            "mlp.bin", SECOND_OBJECT, "emlcnn.new(emlcnn.arena_bytes('mlp.bin'))",
                            "emlcnn.load_model(m, 'mlp.bin')"))
    if "emlmixture" in modules:  # benchmarks/anomaly.py
        Xv, _ = condition_monitoring()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gmm = GaussianMixture(4, covariance_type="full", random_state=0).fit(Xv)
        stored = mixture.mixture_from_sklearn(gmm)
        mixture_format.save(stored, tmp / "gmm.txt")
        models.append(Model("GaussianMixture(4, full), 10 features", "emlmixture", "gmm.txt", RELOAD,
                            "emlmixture.new(%d, %d)" % (stored.n_features, stored.n_components),
                            estimate=stored.ram_bytes()))
    files = {m.file: tmp / m.file for m in models if m.file}
    return models, files


def model_ram_script(model) -> str:
    """The device script that measures one model; prints `RAM <bytes>`."""
    measure = _MEASURE[model.how].format(module=model.module, new=model.new, load=model.load, file=model.file)
    return "import gc\n" + measure + "print('RAM', measure())\n"


def model_ram(modules, board_names) -> tuple[list, dict]:
    """([Model] of the benchmarks of the given modules, {(model index, board): heap bytes the loaded
    model keeps}). One board run per model: a board never frees a native module's code, so each
    model gets a fresh heap."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        models, files = benchmark_models(Path(tmp), modules)
        ram = {}
        for board in board_names:
            for index, m in enumerate(models):
                module = build.build(m.module, boards.BOARDS[board].arch)
                out = boards.run(board, model_ram_script(m), files={m.file: files[m.file]} if m.file else {},
                                 modules={m.module + ".mpy": module})
                ram[(index, board)] = int(out.split("RAM")[1].split()[0])
    return models, ram


def model_ram_table(models, ram, board_names) -> str:
    head = ["model", "module", "measured across", "exporter's estimate"] + ["RAM %s" % b for b in board_names] + [
        "emlearn-micropython"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|" + "---:|" * len(board_names) + "---|"]
    for i, m in enumerate(models):
        cells = [m.title, "`%s`" % m.module, m.how, "—" if m.estimate is None else str(m.estimate)]
        cells += [str(ram[(i, b)]) for b in board_names] + [m.reference]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flash_table(modules, sizes, arches) -> str:
    """Markdown: each module's .mpy bytes beside emlearn-micropython's published counterpart, with the ratio."""
    rows = ["| module | emlearn-micropython | " + " | ".join(arches) + " |", "|---|---|" + "---:|" * len(arches)]
    for m in modules:
        if m not in EMLEARN_MPY:
            continue
        name, theirs = EMLEARN_MPY[m]
        cells = []
        for a in arches:
            ours = sizes.get((m, a))
            cells.append("—" if ours is None else "%d / %d (%.1fx)" % (ours, theirs[a], ours / theirs[a]))
        rows.append("| `%s` | %s | %s |" % (m, name, " | ".join(cells)))
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--modules", default=",".join(build.NATMODS))
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--no-breakdown", action="store_true", help="only the table of .mpy bytes and RAM")
    ap.add_argument("--functions", type=int, default=0, metavar="N",
                    help="also list each module's N largest functions per group (armv7m)")
    args = ap.parse_args(argv)
    modules = args.modules.split(",")
    board_names = args.boards.split(",")
    sizes = flash(modules, ARCHES)
    ram = import_ram(modules, board_names)
    print(table(modules, sizes, ram, ARCHES, board_names))
    print()
    print(flash_table(modules, sizes, ARCHES))
    models, model_board_ram = model_ram(modules, board_names)
    if models:
        print()
        print(model_ram_table(models, model_board_ram, board_names))
    breakdowns = {}
    if not args.no_breakdown:
        for arch, board in BREAKDOWN_BOARDS.items():
            if board in board_names:
                parts = {m: breakdown(m, arch, ram[(m, board)]) for m in modules}
                print()
                print(breakdown_table(arch, parts))
                breakdowns[arch] = {m: {g: p[g] for g in GROUPS} for m, p in parts.items()}
                if args.functions and arch == "armv7m":
                    for m, p in parts.items():
                        for group, functions in p["functions"].items():
                            if functions:
                                print("%s %s: %s" % (m, group, ", ".join("%s %d" % (name, n) for n, name in functions[:args.functions])))
    if args.json:
        args.json.write_text(json.dumps({"mpy_bytes": {"%s/%s" % k: v for k, v in sizes.items()},
                                         "import_ram": {"%s/%s" % k: v for k, v in ram.items()},
                                         "emlearn_m3_reference": EMLEARN_M3,
                                         "emlearn_mpy_reference": EMLEARN_MPY,
                                         "model_ram": [{"model": m.title, "module": m.module, "measured_across": m.how, "estimate": m.estimate,
                                                        "boards": {b: model_board_ram[(i, b)] for b in board_names}}
                                                       for i, m in enumerate(models)],
                                         "breakdown": breakdowns}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
