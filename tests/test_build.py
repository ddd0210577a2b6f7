"""Natmod builds for every target, the toolchain checks, and installing with mip."""

import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from mpyml import build

# MicroPython's native architecture codes (py/persistentcode.h), as they appear in the .mpy header.
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "xtensawin": 10, "rv32imc": 11}


def mpy_header(path):
    data = path.read_bytes()[:3]
    return data[0:1], data[1], data[2] >> 2, data[2] & 3


@pytest.mark.parametrize("arch", list(build.ARCHES))
@pytest.mark.parametrize("module", build.NATMODS)
def test_module_builds(module, arch):
    path = build.build(module, arch)
    magic, version, arch_code, sub_version = mpy_header(path)
    assert (magic, version, arch_code, sub_version) == (b"M", 6, ARCH_CODES[arch], 3)
    print("%s for %s: %d bytes" % (module, arch, path.stat().st_size))
    # A sanity bound, not the footprint goal: benchmarks/footprint.py measures what each module costs in
    # a board's heap (issue 13: emltrees with boosting is 36 KB on armv6m and 40 KB on rv32imc today).
    assert 0 < path.stat().st_size < 48 * 1024


@pytest.mark.skipif(build.INSTALLED, reason="copies the source checkout")
def test_same_sources_give_the_same_mpy_in_any_checkout(tmp_path):
    """emlfft (the smallest module) built from two copies of the checkout at paths of different lengths, in
    processes with different string hashing, is byte-identical: for x64, and for armv6m (nine libgcc members
    linked) when its compiler is here. Before: mpy_ld wrote the absolute build path into the .mpy, and the
    libgcc members were linked in the order of a set."""
    import shutil as sh

    arches = ["x64"] + (["armv6m"] if sh.which("arm-none-eabi-gcc") else [])
    mpy = build.mpy_dir()
    built = []
    for seed, name in ((1, "a"), (2, "a-checkout-at-a-longer-path")):
        root = tmp_path / name
        ignore = shutil.ignore_patterns("__pycache__", "*.mpy")
        shutil.copytree(build.REPO / "exporter", root / "exporter", ignore=ignore)
        shutil.copytree(build.NATMODS_DIR, root / "natmods", ignore=ignore)
        env = dict(os.environ, PYTHONPATH=str(root / "exporter"), MPY_DIR=str(mpy), PYTHONHASHSEED=str(seed))
        code = "from mpyml import build\nfor arch in %r:\n    build.build('emlfft', arch)" % arches
        subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True, capture_output=True, timeout=300)
        built.append({arch: (root / "mpy" / ("%s_6.3" % arch) / "emlfft.mpy").read_bytes() for arch in arches})
    for arch in arches:
        assert built[0][arch] == built[1][arch], arch


def _without_xtensa(monkeypatch, tmp_path):
    """This process as on a machine with no ESP32 compiler: none on PATH, none cached, no tarball."""
    monkeypatch.setattr(build, "XTENSA_CACHE", tmp_path / "no-cache")
    monkeypatch.setattr(build, "XTENSA_TARBALL", tmp_path / "no-tarball.tar.xz")
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not os.path.exists(os.path.join(d, "xtensa-esp32-elf-gcc")))
    monkeypatch.setenv("PATH", path)


def test_missing_toolchain_is_named_and_skipped_by_all(monkeypatch, tmp_path, capsys):
    from mpyml import cli

    _without_xtensa(monkeypatch, tmp_path)
    with pytest.raises(build.ToolchainMissing, match="xtensa-esp32-elf-gcc, which is not on PATH.*ESP-IDF"):
        build.build("emliir", "xtensawin")
    assert cli.main(["build", "--arch", "all", "--module", "emliir", "emllinear"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped xtensawin: ") == 1 and "xtensa-esp32-elf-gcc" in err
    assert cli.main(["build", "--arch", "x64", "xtensawin", "--module", "emliir"]) == 1
    captured = capsys.readouterr()
    assert "FAILED emliir for xtensawin" in captured.err
    assert "summary: x64: 1 module; 1 failed" in captured.out


def test_missing_micropython_tree_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("MPY_DIR", raising=False)
    monkeypatch.setattr(build, "MICROPYTHON_CACHE", tmp_path / "no-tree")
    monkeypatch.setattr(build, "MICROPYTHON_TARBALL", tmp_path / "micropython-1.27.0.tar.xz")
    with pytest.raises(build.ToolchainMissing, match="no MicroPython source tree: pass `mpyml build --micropython DIR` or set MPY_DIR"):
        build.build("emliir", "x64")


def test_mpy_dir_too_old_for_the_arch(monkeypatch, tmp_path):
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "dynruntime.mk").write_text("ifeq ($(ARCH),x64)\n")
    (tmp_path / "mpy-cross" / "build").mkdir(parents=True)
    (tmp_path / "mpy-cross" / "build" / "mpy-cross").write_text("")
    monkeypatch.setenv("MPY_DIR", str(tmp_path))
    with pytest.raises(build.ToolchainMissing, match="cannot build ARCH=rv32imc"):
        build.build("emliir", "rv32imc")


def test_unknown_arch_and_module():
    with pytest.raises(build.BuildError, match="unknown ARCH 'z80'"):
        build.build("emltrees", "z80")
    with pytest.raises(build.BuildError, match="unknown module"):
        build.build("nosuchmodule", "x64")


def test_mpy_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("MPY_DIR", str(tmp_path))
    with pytest.raises(build.BuildError, match="not a MicroPython source tree"):
        build.build("emltrees", "x64")
    monkeypatch.setenv("MPY_DIR", str(build.MICROPYTHON_CACHE))
    assert build.mpy_dir() == build.MICROPYTHON_CACHE.resolve()
    assert build.build("emltrees", "x64").is_file()


def test_mip_installs_from_the_manifest(emltrees_x64, tmp_path):
    """Serves mpy/x64_6.3/ on loopback and installs from its package.json with mip on the unix port."""
    directory = emltrees_x64.parent

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/package.json" % server.server_address[1]
        env = dict(os.environ, MICROPYPATH=".frozen")
        exe = shutil.which("micropython")
        subprocess.run([exe, "-c", "import mip; mip.install(%r, target='lib')" % url], cwd=tmp_path, env=env,
                       check=True, capture_output=True, timeout=60)
    finally:
        server.shutdown()
    assert (tmp_path / "lib" / "emltrees.mpy").read_bytes() == emltrees_x64.read_bytes()
    out = subprocess.run([exe, "-c", "import emltrees; print(emltrees.new(1, 1, 1).loaded)"], cwd=tmp_path,
                         env=dict(os.environ, MICROPYPATH="lib"), capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
