"""Benchmark: the footprint of every native module: flash (.mpy bytes) and RAM after import.

For every module and architecture: the .mpy's bytes as `mpyml build` writes it. For every
emulated board (mpyml.boards, MicroPython 1.27 firmware under qemu): heap bytes that
`import <module>` takes (`gc.mem_alloc()` after `gc.collect()`, before and after; on a
board the native code and the module's Python parts live in the heap). Beside the Cortex-M3
column: emlearn-micropython's figures as stated in issue 13 (Cortex-M3, MicroPython 1.27
firmware, same method, measured the week of 2026-11-23); they are reference numbers, not
built here.

    python benchmarks/footprint.py [--json PATH] [--modules emliir,emlfft] [--boards MPS2_AN385]

Not yet: model RAM after load for the benchmark models (the digits forest of
benchmarks/trees.py and the k-NN, IIR, linear and CNN models of the other benchmarks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))

from mpyml import boards, build  # noqa: E402

ARCHES = ("x64", "armv6m", "armv7m", "armv7emsp", "rv32imc", "xtensawin")
BOARDS = ("MPS2_AN385", "MPS2_AN500", "MICROBIT", "VIRT_RV32")
# emlearn-micropython, RAM after import on Cortex-M3 (issue 13's table; 2026-11-23 week).
EMLEARN_M3 = {"emltrees": ("emlearn_trees", 3968), "emliir": ("emlearn_iir", 2464),
              "emlfft": ("emlearn_fft", 2976), "emlneighbors": ("emlearn_neighbors", 2448),
              "emllinear": ("emlearn_linreg", 4768)}

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--modules", default=",".join(build.NATMODS))
    ap.add_argument("--boards", default=",".join(BOARDS))
    args = ap.parse_args(argv)
    modules = args.modules.split(",")
    board_names = args.boards.split(",")
    sizes = flash(modules, ARCHES)
    ram = import_ram(modules, board_names)
    print(table(modules, sizes, ram, ARCHES, board_names))
    if args.json:
        args.json.write_text(json.dumps({"mpy_bytes": {"%s/%s" % k: v for k, v in sizes.items()},
                                         "import_ram": {"%s/%s" % k: v for k, v in ram.items()},
                                         "emlearn_m3_reference": EMLEARN_M3}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
