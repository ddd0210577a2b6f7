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
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "xtensawin": 10}


def mpy_header(path):
    data = path.read_bytes()[:3]
    return data[0:1], data[1], data[2] >> 2, data[2] & 3


@pytest.mark.parametrize("arch", ["x64", "armv6m", "armv7m", "armv7emsp"])
@pytest.mark.parametrize("module", build.NATMODS)
def test_module_builds(module, arch):
    path = build.build(module, arch)
    magic, version, arch_code, sub_version = mpy_header(path)
    assert (magic, version, arch_code, sub_version) == (b"M", 6, ARCH_CODES[arch], 3)
    print("%s for %s: %d bytes" % (module, arch, path.stat().st_size))
    assert 0 < path.stat().st_size < 32 * 1024


def test_xtensawin_names_the_missing_compiler():
    if shutil.which("xtensa-esp32-elf-gcc"):
        path = build.build("emltrees", "xtensawin")
        assert mpy_header(path)[2] == ARCH_CODES["xtensawin"]
        return
    with pytest.raises(build.BuildError, match="xtensa-esp32-elf-gcc, which is not on PATH"):
        build.build("emltrees", "xtensawin")
    result = subprocess.run([sys.executable, "-m", "mpyml", "build", "--arch", "xtensawin"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "xtensa-esp32-elf-gcc" in result.stderr and "ESP-IDF" in result.stderr


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
