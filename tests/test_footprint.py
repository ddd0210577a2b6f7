"""benchmarks/footprint.py's breakdown of a module's bytes: every function is assigned to a group."""

import sys
from pathlib import Path

import pytest

from mpyml import build

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import footprint  # noqa: E402


@pytest.mark.parametrize("module", build.NATMODS)
def test_every_function_is_in_a_group(module):
    try:
        parts = footprint.breakdown(module, "armv7m")
    except build.ToolchainMissing as e:
        pytest.skip(str(e))
    functions = parts.pop("functions")
    assert set(parts) == set(footprint.GROUPS) - {"rest of RAM"}
    # Every function of the built object is in one group (breakdown raises for a file in none), and
    # the groups with the strings, tables, libgcc and Python parts add up to the module's bytes.
    names = [name for group in functions.values() for _, name in group]
    assert len(names) == len(set(names)) and "mpy_init" in [n for _, n in functions["glue"]]
    for group in ("core", "glue"):
        assert parts[group] == sum(n for n, _ in functions[group]) > 0
    work = build.BUILD_DIR / "armv7m" / module
    py_sources = [p for p in (build.NATMODS_DIR / module / "Makefile").read_text().split() if p.endswith(".py")]
    assert len(footprint.python_parts(module, "armv7m")) == len(py_sources)
    assert parts["Python parts"] == sum(p.stat().st_size for p in footprint.python_parts(module, "armv7m"))
    # The native .mpy carries the code and data plus its own headers and relocations.
    native = (work / (module + ".native.mpy")).stat().st_size
    code = sum(parts[g] for g in ("record reader", "core", "glue", "messages", "tables, data, bss", "libgcc"))
    assert code <= native < code + 1024


def test_a_file_in_no_group_is_refused():
    with pytest.raises(ValueError, match="no footprint group"):
        footprint.group_of("emliir", "/somewhere/mpyml_new_family.h")
    assert footprint.group_of("emliir", "/x/natmods/emliir/emliir.c") == "glue"
    assert footprint.group_of("emliir", "/x/natmods/common/mpyml_text.h") == "record reader"


@pytest.mark.boards
def test_model_ram_of_every_benchmark_model():
    """One model per module, measured on a board: the heap it keeps is the exporter's estimate (the
    model block) plus at most the module's object."""
    try:
        models, ram = footprint.model_ram(build.NATMODS, ["MPS2_AN385"])
    except build.ToolchainMissing as e:
        pytest.skip(str(e))
    assert sorted(m.module for m in models) == sorted(build.NATMODS)
    for i, m in enumerate(models):
        measured = ram[(i, "MPS2_AN385")]
        if m.estimate is None:
            assert measured > 0, m.title
        else:
            assert m.estimate <= measured <= m.estimate + 256, (m.title, m.estimate, measured)
    assert footprint.model_ram_table(models, ram, ["MPS2_AN385"]).count("\n") == len(models) + 1
