"""Builds mpyml's native modules into <out>/<arch>_6.3/<module>.mpy.

<out> is the folder given (`mpyml build --out DIR`), by default MPY_OUT: the repository's mpy/
in a source checkout, else mpy/ in the current folder (never the installed package's own tree).

One toolchain for every target: MicroPython 1.27.0's natmod tools (py/dynruntime.mk,
tools/mpy_ld.py, mpy-cross), which build rv32imc and link the ESP32 compiler's
output (1.23's did neither). The source tree comes from, in this order:
  1. MPY_DIR: your own MicroPython checkout (1.24 or later for rv32imc and xtensawin);
  2. <cache>/micropython-1.27.0/, unpacked earlier (<cache>: .cache/ of a source checkout, git-ignored;
     installed from a wheel, $MPYML_CACHE or ~/.cache/mpyml);
  3. in a source checkout, micropython-1.27.0.tar.xz in ../shared/micropython/ beside the
     repository (sha256-checked, unpacked into .cache/).
Installed from a wheel, there is no archive beside the package: set MPY_DIR (`mpyml build
--micropython DIR` does) to a MicroPython source tree. Cross compilers come from PATH; the ESP32 one
(xtensa-esp32-elf-gcc) is also taken from <cache>/xtensa-esp32-elf/ or, in a source checkout,
unpacked there from ../shared/toolchains/.
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

PACKAGE_DIR = Path(__file__).resolve().parent
# Installed from a wheel, the natmod sources and the portable device modules are package data
# (pyproject.toml maps natmods/ to mpyml/natmods and mpy/ to mpyml/portable); in a source
# checkout they are the repository's own folders.
INSTALLED = (PACKAGE_DIR / "natmods" / "natmod.mk").is_file()
if INSTALLED:
    REPO = None
    NATMODS_DIR = PACKAGE_DIR / "natmods"
    PORTABLE_DIR = PACKAGE_DIR / "portable"
    MPY_OUT = Path("mpy")  # relative: mpy/ of the current folder when used
    CACHE = Path(os.environ.get("MPYML_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpyml")
    BUILD_DIR = CACHE / "build"
    SHARED = None
else:
    REPO = PACKAGE_DIR.parents[1]
    NATMODS_DIR = REPO / "natmods"
    PORTABLE_DIR = REPO / "mpy"
    MPY_OUT = REPO / "mpy"
    CACHE = REPO / ".cache"
    BUILD_DIR = REPO / "build"
    SHARED = REPO.parent / "shared"

MPY_ABI = "6.3"
MICROPYTHON_VERSION = "1.27.0"
MICROPYTHON_CACHE = CACHE / ("micropython-" + MICROPYTHON_VERSION)
MICROPYTHON_TARBALL = SHARED / "micropython" / ("micropython-%s.tar.xz" % MICROPYTHON_VERSION) if SHARED else None
MICROPYTHON_SHA256 = "bc1c764f84f1504de3e784835793bb24f764d6fe33cd2b7418c1ab21f8490174"
XTENSA_CACHE = CACHE / "xtensa-esp32-elf"
XTENSA_TARBALL = SHARED / "toolchains" / "xtensa-esp32-elf-gcc12-x86_64-linux.tar.xz" if SHARED else None
XTENSA_SHA256 = "433919b64aaa969f5d3fa36961878b3b088af3cd55fbbeda4b2477fc4bb1fbf0"

NATMODS = ("emltrees", "emlfft", "emliir", "emlneighbors", "emlcnn", "emllinear", "emlmixture")

# Cross-compiler prefix and the flags dynruntime.mk uses (to find the matching libgcc).
ARCHES = {
    "x64": ("", []),
    "armv6m": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m0"]),
    "armv7m": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m3"]),
    "armv7emsp": ("arm-none-eabi-", ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "rv32imc": ("riscv64-unknown-elf-", ["-march=rv32imac", "-mabi=ilp32"]),
    "xtensawin": ("xtensa-esp32-elf-", []),
}
COMPILER_HINTS = {
    "arm-none-eabi-": "install Debian's gcc-arm-none-eabi (apt-get install gcc-arm-none-eabi)",
    "riscv64-unknown-elf-": "install Debian's gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf "
                            "(apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)",
    "xtensa-esp32-elf-": "install Espressif's ESP32 toolchain (it comes with ESP-IDF; `. $IDF_PATH/export.sh` puts "
                         "it on PATH)" + (", or place xtensa-esp32-elf-gcc12-x86_64-linux.tar.xz in %s" % XTENSA_TARBALL.parent
                                          if XTENSA_TARBALL else ""),
}
# libgcc members that MicroPython's mpy_ld cannot link (a relocation it rejects).
UNLINKABLE_MEMBERS = {"divsf3.o": "float division (__aeabi_fdiv)"}


class BuildError(RuntimeError):
    pass


class ToolchainMissing(BuildError):
    """A cross compiler or the MicroPython tree is not on this machine (nothing wrong with the code)."""


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BuildError("command failed: %s\n%s%s" % (" ".join(map(str, cmd)), result.stdout[-4000:], result.stderr[-4000:]))
    return result


def _unpack_checked(archive: Path, sha256: str, dest: Path, strip_into: bool) -> None:
    """Unpacks a sha256-checked tarball into dest (strip_into: the archive has no top folder)."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        raise BuildError("%s: sha256 %s does not match the pinned %s" % (archive, digest, sha256))
    print("mpyml: unpacking %s into %s" % (archive.name, dest), file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staging = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="fully_trusted")
        source = staging if strip_into else staging / dest.name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(source), dest)


def micropython_tree() -> Path:
    """The MicroPython source tree (MPY_DIR or MICROPYTHON_SRC, or the cached 1.27.0 tree), without building
    anything: natmods, firmware for the emulated boards and the float32 unix port are built from it."""
    for variable in ("MPY_DIR", "MICROPYTHON_SRC"):
        if os.environ.get(variable):
            path = Path(os.environ[variable]).resolve()
            if not (path / "py" / "dynruntime.mk").is_file():
                raise BuildError("%s=%s is not a MicroPython source tree (no py/dynruntime.mk)" % (variable, path))
            return path
    path = MICROPYTHON_CACHE
    if not (path / "py" / "dynruntime.mk").is_file():
        if MICROPYTHON_TARBALL is None or not MICROPYTHON_TARBALL.is_file():
            where = (" or place micropython-%s.tar.xz in %s" % (MICROPYTHON_VERSION, MICROPYTHON_TARBALL.parent)
                     if MICROPYTHON_TARBALL else "")
            raise ToolchainMissing(
                "no MicroPython source tree: pass `mpyml build --micropython DIR` or set MPY_DIR to a MicroPython "
                "source tree (1.24 or later; %s is tested: `git clone --depth 1 --branch v%s "
                "https://github.com/micropython/micropython`, or the release archive micropython-%s.tar.xz "
                "unpacked)%s" % (MICROPYTHON_VERSION, MICROPYTHON_VERSION, MICROPYTHON_VERSION, where))
        _unpack_checked(MICROPYTHON_TARBALL, MICROPYTHON_SHA256, path, strip_into=True)
    return path


def mpy_dir() -> Path:
    """MicroPython source tree for building natmods, with mpy-cross built."""
    path = micropython_tree()
    if not (path / "mpy-cross" / "build" / "mpy-cross").is_file():
        print("mpyml: building mpy-cross in %s" % path, file=sys.stderr)
        _run(["make", "-C", str(path / "mpy-cross"), "-j%d" % (os.cpu_count() or 1)])
    return path


def toolchain_env(prefix: str) -> dict:
    """The environment to run `<prefix>gcc` in: PATH extended with the cached ESP32 compiler when needed."""
    env = dict(os.environ)
    if not prefix or shutil.which(prefix + "gcc"):
        return env
    if prefix == "xtensa-esp32-elf-":
        if not (XTENSA_CACHE / "bin" / "xtensa-esp32-elf-gcc").is_file() and XTENSA_TARBALL and XTENSA_TARBALL.is_file():
            _unpack_checked(XTENSA_TARBALL, XTENSA_SHA256, XTENSA_CACHE, strip_into=False)
        env["PATH"] = "%s%s%s" % (XTENSA_CACHE / "bin", os.pathsep, env.get("PATH", ""))
    return env


def _check_compiler(arch: str) -> tuple[str, dict]:
    """(compiler prefix, environment to build in), or ToolchainMissing naming what to install."""
    if arch not in ARCHES:
        raise BuildError("unknown ARCH %r; supported: %s" % (arch, ", ".join(ARCHES)))
    prefix = ARCHES[arch][0]
    gcc = prefix + "gcc"
    env = toolchain_env(prefix)
    if shutil.which(gcc, path=env.get("PATH")) is None:
        raise ToolchainMissing("ARCH=%s needs the cross compiler %s, which is not on PATH: %s"
                               % (arch, gcc, COMPILER_HINTS.get(prefix, "install it")))
    return prefix, env


def _check_tree_supports(mpy: Path, arch: str) -> None:
    if "ifeq ($(ARCH),%s)" % arch not in (mpy / "py" / "dynruntime.mk").read_text():
        raise ToolchainMissing("the MicroPython tree %s cannot build ARCH=%s (MicroPython 1.24 or later can; "
                               "%s is tested)" % (mpy, arch, MICROPYTHON_VERSION))


def _defined_and_undefined(nm: str, path: Path, env: dict) -> dict:
    """{member or object: (defined symbols, undefined symbols)} from `nm -A`."""
    table: dict = {}
    out = _run([nm, "-A", str(path)], env=env).stdout
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


def _libgcc_objects(arch: str, objects: list[Path], work: Path, env: dict) -> list[Path]:
    """The libgcc members the objects need (transitively), extracted as object files."""
    prefix, flags = ARCHES[arch]
    libgcc = Path(_run([prefix + "gcc", *flags, "-print-libgcc-file-name"], env=env).stdout.strip())
    archive = _defined_and_undefined(prefix + "nm", libgcc, env)
    provider = {}
    for member, (defined, _) in archive.items():
        for symbol in defined:
            provider.setdefault(symbol, member)
    defined_here, pending = set(), set()
    for obj in objects:
        for defined, undefined in _defined_and_undefined(prefix + "nm", obj, env).values():
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
        _run([prefix + "ar", "x", str(libgcc), *needed], cwd=libdir, env=env)
    # Sorted: the search above pops a set, whose order changes from run to run, and the link order sets the .mpy's bytes.
    return [libdir / m for m in sorted(needed)]


@contextlib.contextmanager
def _build_lock():
    """One build at a time: make writes <module>.mpy into the module's source folder."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def module_dir(arch: str = "x64", out=None) -> Path:
    """The folder of the modules built for `arch`: <out>/<arch>_6.3 (out: default MPY_OUT), absolute."""
    return Path(out if out is not None else MPY_OUT).resolve() / ("%s_%s" % (arch, MPY_ABI))


def build(module: str, arch: str = "x64", out=None, features=None) -> Path:
    """Builds one natmod for one architecture into module_dir(arch, out); returns the .mpy path.

    features: emltrees only, a trimmed build with just these of TREES_FEATURES (trees_features()
    gives those that model files need); None builds every feature."""
    if module not in NATMODS:
        raise BuildError("unknown module %r; modules: %s" % (module, ", ".join(NATMODS)))
    defines = []
    if features is not None:
        unknown = sorted(set(features) - set(TREES_FEATURES))
        if module != "emltrees" or unknown:
            raise BuildError("a trimmed build is emltrees' only, with features among %s; got %s for %s"
                             % (", ".join(TREES_FEATURES), ", ".join(unknown) or "features", module))
        features = [f for f in TREES_FEATURES if f in features]
        defines = ["-DMPYML_TREES_TRIMMED"] + ["-DMPYML_TREES_WITH_%s=1" % f for f in features]
    prefix, env = _check_compiler(arch)
    with _build_lock():
        mpy = mpy_dir()
        _check_tree_supports(mpy, arch)
        # A trimmed build has its own objects: make does not see a change of defines.
        work_name = module if features is None else "-".join([module, "trimmed"] + [f.lower() for f in features])
        return _build_locked(module, arch, prefix, mpy, env, module_dir(arch, out), defines, work_name)


# The features of an emltrees build (natmods/emltrees/emltrees.c defines each as MPYML_TREES_WITH_<name>);
# hard voting on int16 features is in every build.
TREES_FEATURES = ("FLOAT32", "SOFT", "SOFT_EXACT", "SAMME", "REGRESSOR", "BOOST", "STEPS")


def trees_features(paths) -> list[str]:
    """The TREES_FEATURES that emltrees needs to load these mpyml-trees files (read and checked on the
    host by mpyml.formats.trees.load: a file it refuses raises mpyml.FormatError)."""
    from .formats import trees as trees_format

    needed = set()
    for path in paths:
        stored = trees_format.load(path)
        forest = getattr(stored, "model", stored)
        if getattr(stored, "steps", None) is not None:
            needed.add("STEPS")
        if forest.dtype == "float32":
            needed.add("FLOAT32")
        if forest.voting == "boost":
            needed.add("BOOST")
        elif forest.voting == "samme":
            needed.add("SAMME")
        elif forest.voting == "soft":
            needed.add("SOFT" if forest.leaf_kind == "counts" else "SOFT_EXACT")
        elif forest.kind == "regressor":
            needed.add("REGRESSOR")
    return [f for f in TREES_FEATURES if f in needed]


def debug_objects(module: str, arch: str) -> list[Path]:
    """The module's object files compiled again with the same flags plus -g (debug information only:
    gcc emits the same code) into BUILD_DIR/<arch>/<module>.debug/, for tools that ask which source
    file defines each function (benchmarks/footprint.py)."""
    if module not in NATMODS:
        raise BuildError("unknown module %r; modules: %s" % (module, ", ".join(NATMODS)))
    prefix, env = _check_compiler(arch)
    work = BUILD_DIR / arch / (module + ".debug")
    with _build_lock():
        mpy = mpy_dir()
        _check_tree_supports(mpy, arch)
        source = _natmods_source() / module
        # CFLAGS_EXTRA from the environment: natmod.mk's `+=` appends to it (a command-line value would replace them).
        _run(["make", "-C", str(source), "MPY_DIR=%s" % mpy, "ARCH=%s" % arch, "BUILD=%s" % work,
              "PYTHON=%s" % sys.executable, "objects"], env=dict(env, CFLAGS_EXTRA="-g"))
    return sorted(work.rglob("*.o"))


def _natmods_source() -> Path:
    """The natmod sources to run make in. make writes <module>.mpy beside the sources, so an installed
    package's sources are first copied (with their times, for make) to BUILD_DIR/natmods."""
    if not INSTALLED:
        return NATMODS_DIR
    staged = BUILD_DIR / "natmods"
    shutil.copytree(NATMODS_DIR, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return staged


def _build_locked(module: str, arch: str, prefix: str, mpy: Path, env: dict, out_dir: Path, defines=(),
                  work_name=None) -> Path:
    source = _natmods_source() / module
    work = BUILD_DIR / arch / (work_name or module)
    # BUILD relative to the sources: mpy_ld writes the path of its output (BUILD/<module>.native.mpy) into the
    # .mpy as the module's file name, so an absolute one made the .mpy depend on where the checkout is.
    make = ["make", "-C", str(source), "MPY_DIR=%s" % mpy, "ARCH=%s" % arch, "BUILD=%s" % os.path.relpath(work, source),
            "PYTHON=%s" % sys.executable,
            "MPYML_DEFINES=%s" % " ".join(defines)]
    link_objs: list[Path] = []
    if prefix:
        _run(make + ["objects"], env=env)
        objects = sorted(p for p in work.rglob("*.o") if p.parent.name != "libgcc")
        link_objs = _libgcc_objects(arch, objects, work, env)
    _run(make + ["LINK_OBJS=%s" % " ".join(map(str, link_objs))], env=env)
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


def build_all(arches=("x64",), modules=NATMODS, out=None, progress=False, features=None) -> dict:
    """Builds every module for every arch into `out`: {(module, arch): .mpy path or BuildError}.
    progress=True shows a progress bar (tqdm) on stderr; features: see build()."""
    from tqdm import tqdm

    jobs = [(module, arch) for arch in arches for module in modules]
    results = {}
    with tqdm(jobs, desc="mpyml build", unit="module", disable=not progress, file=sys.stderr) as bar:
        for module, arch in bar:
            bar.set_postfix_str("%s %s" % (arch, module))
            try:
                results[(module, arch)] = build(module, arch, out, features)
            except BuildError as e:
                results[(module, arch)] = e
    return results
