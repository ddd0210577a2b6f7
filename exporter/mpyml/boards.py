"""Runs MicroPython code on emulated microcontroller boards (MicroPython 1.27 firmware under qemu).

`run(board, script, files)` is the counterpart of `device.run` for the unix port: it boots the
board's firmware, makes `files` and the board's native modules (mpy/<arch>_6.3/*.mpy) importable
and readable from the current directory, runs `script`, and returns what it printed.

How: every file goes into one image that qemu's `-device loader` puts into the board's memory
before boot (much faster than the emulated UART). A small read/write RAM filesystem in Python,
mounted at /ram and made the current directory, serves the image's files in place
(`uctypes.bytearray_at`) and keeps files the script writes in the heap. The script runs from the
image too; only a one-line bootstrap travels over the serial port, in raw REPL mode.

Firmware is built once per board from MicroPython's ports/qemu (the tree `build.micropython_tree()`
gives) into the git-ignored .cache/firmware/<board>/ and reused while it exists.
"""

from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, device


class BoardError(RuntimeError):
    pass


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    arch: str                 # the natmod architecture the firmware loads
    qemu: str                 # qemu-system-* binary
    qemu_args: tuple          # machine and board options
    image_addr: int           # where the file image goes: memory the firmware does not use
    image_max: int
    make_args: tuple = field(default=())
    compiler: str = "arm-none-eabi-gcc"


BOARDS = {
    "MPS2_AN385": Board("MPS2_AN385", "Cortex-M3, float32", "armv7m", "qemu-system-arm",
                        ("-machine", "mps2-an385"), 0x20000000, 4 << 20),
    "MPS2_AN500": Board("MPS2_AN500", "Cortex-M7, float64 Python floats", "armv7emsp", "qemu-system-arm",
                        ("-machine", "mps2-an500"), 0x20000000, 4 << 20),
    # Native-code loading is off in the shipped MICROBIT config; these flags turn it on for armv6m.
    "MICROBIT": Board("MICROBIT", "Cortex-M0 (nRF51), float32", "armv6m", "qemu-system-arm",
                      ("-machine", "microbit", "-global", "nrf51-soc.flash-size=1048576",
                       "-global", "nrf51-soc.sram-size=262144"), 0x80000, 512 << 10,
                      ("CFLAGS_EXTRA=-DMICROPY_EMIT_THUMB=1 -DMICROPY_EMIT_THUMB_ARMV7M=0",)),
    # Debian's GCC 12 picks the rv64 libgcc/picolibc for -march=rv32imac_zicsr (the port's default);
    # the 2.2 ISA spec implies Zicsr, so plain rv32imac both assembles and finds the rv32imac multilib.
    "VIRT_RV32": Board("VIRT_RV32", "RISC-V rv32imc, float32", "rv32imc", "qemu-system-riscv32",
                       ("-machine", "virt", "-bios", "none"), 0x81000000, 16 << 20,
                       ("RV32_ARCH=rv32imac -misa-spec=2.2",), compiler="riscv64-unknown-elf-gcc"),
}
FIRMWARE_DIR = build.CACHE / "firmware"
IMAGE_MAGIC = b"MPYMLIMG"
QEMU_HINTS = {
    "qemu-system-arm": "apt-get install qemu-system-arm",
    "qemu-system-riscv32": "apt-get install qemu-system-misc",
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "riscv64-unknown-elf-gcc": "apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
}


def _missing(tool: str) -> None:
    if shutil.which(tool) is None:
        raise build.ToolchainMissing("%s is not on PATH: %s" % (tool, QEMU_HINTS[tool]))


def firmware(board: str) -> Path:
    """The board's firmware.elf, built from MicroPython's ports/qemu when missing."""
    spec = _board(board)
    out = FIRMWARE_DIR / board / "firmware.elf"
    if out.is_file():
        return out
    _missing(spec.compiler)
    tree = build.micropython_tree()
    with build._build_lock():
        if out.is_file():  # built by another process meanwhile
            return out
        print("mpyml: building MicroPython firmware for %s" % board, file=sys.stderr)
        work = FIRMWARE_DIR / board / "build"
        build._run(["make", "-C", str(tree / "ports" / "qemu"), "-j%d" % (os.cpu_count() or 1), "BOARD=%s" % board,
                    "FROZEN_MANIFEST=", "BUILD=%s" % work, *spec.make_args])
        shutil.copyfile(work / "firmware.elf", out)
    return out


def _board(board: str) -> Board:
    if board not in BOARDS:
        raise BoardError("unknown board %r; boards: %s" % (board, ", ".join(BOARDS)))
    return BOARDS[board]


def _image(files: dict) -> tuple[bytes, dict]:
    """(image, {name: (offset, length)}). Layout: MAGIC, u32 count, then per file: u16 name length,
    name, u32 offset, u32 length (from the image start); the files' bytes follow, each 4-aligned."""
    entries = [(name.encode(), data) for name, data in files.items()]
    offset = len(IMAGE_MAGIC) + 4 + sum(2 + len(name) + 8 for name, _ in entries)
    table, places = b"", {}
    for name, data in entries:
        offset += -offset % 4
        table += struct.pack("<H", len(name)) + name + struct.pack("<II", offset, len(data))
        places[name.decode()] = (offset, len(data))
        offset += len(data)
    body = bytearray(IMAGE_MAGIC + struct.pack("<I", len(entries)) + table)
    for _, data in entries:
        body += bytes(-len(body) % 4)
        body += data
    return bytes(body), places


# A RAM filesystem in MicroPython (the emulated boards' firmware has none): files are the entries of
# the dict `_files` (name -> bytes or memoryview). Sent as source: the board runner mounts it over the
# loaded image, and `mpyml deploy`'s test mounts it before copying files with mpremote.
RAM_FS = """
import io, vfs
_files = {}

class _File(io.IOBase):
    def __init__(self, name, data, writing, text):
        self.name, self.data, self.pos, self.writing, self.text = name, data, 0, writing, text
    def ioctl(self, req, arg):
        if req == 4 and self.writing:
            _files[self.name] = memoryview(bytes(self.data))
        return 0
    def close(self):
        self.ioctl(4, 0)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.close()
    def readinto(self, buf):
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n
    def read(self, n=-1):
        end = len(self.data) if n < 0 else min(len(self.data), self.pos + n)
        out = bytes(self.data[self.pos:end])
        self.pos = end
        return out.decode() if self.text else out
    def readline(self):
        end = self.pos
        while end < len(self.data) and self.data[end] != 10:
            end += 1
        return self.read(end + 1 - self.pos)
    def write(self, buf):
        if isinstance(buf, str):
            buf = buf.encode()
        self.data += buf
        return len(buf)
    def __iter__(self):
        return self
    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

class _RamFS:
    def mount(self, readonly, mkfs):
        pass
    def umount(self):
        pass
    def chdir(self, path):
        pass
    def getcwd(self):
        return ''
    def ilistdir(self, path):
        for name in _files:
            yield (name, 0x8000, 0, len(_files[name]))
    def stat(self, path):
        path = path.lstrip('/')
        if path in _files:
            return (0x8000, 0, 0, 0, 0, 0, len(_files[path]), 0, 0, 0)
        if path == '':
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        raise OSError(2)
    def remove(self, path):
        del _files[path.lstrip('/')]
    def open(self, path, mode):
        path = path.lstrip('/')
        if 'w' in mode:
            return _File(path, bytearray(), True, 'b' not in mode)
        if path not in _files:
            raise OSError(2)
        return _File(path, _files[path], False, 'b' not in mode)

"""

# Runs on the board: the RAM filesystem over the loaded image, then the script from it.
_DRIVER = RAM_FS + """
import gc, os, sys, struct, uctypes
_base = %d
_n = struct.unpack_from('<I', uctypes.bytearray_at(_base + 8, 4))[0]
_p = _base + 12
for _i in range(_n):
    _l = struct.unpack_from('<H', uctypes.bytearray_at(_p, 2))[0]
    _name = bytes(uctypes.bytearray_at(_p + 2, _l)).decode()
    _o, _s = struct.unpack_from('<II', uctypes.bytearray_at(_p + 2 + _l, 8))
    _files[_name] = memoryview(uctypes.bytearray_at(_base + _o, _s))
    _p += 2 + _l + 8

vfs.mount(_RamFS(), '/ram')
os.chdir('/ram')
sys.path.insert(0, '/ram')
_script = bytes(_files.pop('__script__.py'))
del _files['__driver__.py'], _i, _l, _name, _o, _s, _p, _n
gc.collect()
exec(_script)
"""
# The one line sent over the serial port: runs the driver from the image.
_BOOTSTRAP = "import uctypes;exec(bytes(uctypes.bytearray_at(0x%x,%d)))"


class _Qemu:
    """One qemu process with the serial port on stdio; reading with a deadline."""

    def __init__(self, spec: Board, image_path: Path, serial: str = "stdio"):
        _missing(spec.qemu)
        cmd = [spec.qemu, *spec.qemu_args, "-display", "none", "-monitor", "none", "-semihosting",
               "-serial", serial, "-kernel", str(firmware(spec.name)),
               "-device", "loader,file=%s,addr=0x%x,force-raw=on" % (image_path, spec.image_addr)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buffer = b""

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, marker: bytes, deadline: float) -> bytes:
        """Everything up to and including `marker`; BoardError at the deadline or when qemu exits."""
        fd = self.proc.stdout.fileno()
        while marker not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoardError("timed out waiting for %r; board printed:\n%s" % (marker, self.buffer[-3000:].decode(errors="replace")))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BoardError("qemu exited (%s); board printed:\n%s" % (
                        self.proc.stderr.read().decode(errors="replace")[-2000:], self.buffer[-3000:].decode(errors="replace")))
                self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def module_files(arch: str) -> dict:
    """{name: bytes} of every native module built for `arch` (mpy/<arch>_6.3/*.mpy)."""
    return {p.name: p.read_bytes() for p in sorted(device.module_dir(arch).glob("*.mpy"))}


def _contents(files) -> dict:
    return {name: (data if isinstance(data, (bytes, bytearray)) else Path(data).read_bytes())
            for name, data in dict(files).items()}


def run(board: str, script: str, files=None, timeout: float = 120, modules=None) -> str:
    """Runs `script` on the emulated board; returns its stdout, or raises BoardError with the traceback.

    files: {name: bytes or path} readable (and writable) from the current directory on the board.
    modules: {file name: bytes or path} of the .mpy files to import, e.g. {"emltrees.mpy": path}; default
    every .mpy built for the board's arch.
    board "unix" runs the same on the unix port (x64, Python floats are doubles) with device.run.
    """
    files = _contents(files or {})
    if board == "unix":
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            extra = ()
            if modules is not None:
                for name, data in _contents(modules).items():
                    (Path(tmp) / name).write_bytes(data)
                extra = (tmp,)
            try:
                return device.run(script, cwd=tmp, timeout=timeout, extra_path=extra)
            except device.DeviceError as e:
                raise BoardError(str(e)) from None
    spec = _board(board)
    image_files = dict(module_files(spec.arch) if modules is None else _contents(modules))
    image_files.update(files)
    image_files["__script__.py"] = script.encode()
    image_files["__driver__.py"] = (_DRIVER % spec.image_addr).encode()
    image, places = _image(image_files)
    driver_offset, driver_length = places["__driver__.py"]
    if len(image) > spec.image_max:
        raise BoardError("%s: %d bytes of files exceed the %d the board image holds" % (board, len(image), spec.image_max))
    with tempfile.TemporaryDirectory() as tmp:
        image_path = Path(tmp) / "image.bin"
        image_path.write_bytes(image)
        qemu = _Qemu(spec, image_path)
        try:
            deadline = time.monotonic() + timeout
            qemu.write(b"\r\x03\x03")
            qemu.read_until(b">>> ", deadline)
            qemu.write(b"\x01")
            qemu.read_until(b"raw REPL; CTRL-B to exit\r\n>", deadline)
            qemu.write((_BOOTSTRAP % (spec.image_addr + driver_offset, driver_length)).encode() + b"\x04")
            qemu.read_until(b"OK", deadline)
            out = qemu.read_until(b"\x04", deadline)[:-1]
            err = qemu.read_until(b"\x04>", deadline)[:-2]
        finally:
            qemu.close()
    if err:
        raise BoardError("%s raised:\n%s%s" % (board, out.decode(errors="replace")[-3000:], err.decode(errors="replace")))
    return out.decode().replace("\r\n", "\n")


class serial_pty:
    """Context manager: the board booted with its REPL on a pseudo-terminal, for tools such as
    mpremote (`with boards.serial_pty("MPS2_AN385") as path: mpremote connect <path> ...`)."""

    def __init__(self, board: str, timeout: float = 30):
        self.spec, self.timeout = _board(board), timeout

    def __enter__(self) -> str:
        _missing(self.spec.qemu)
        cmd = [self.spec.qemu, *self.spec.qemu_args, "-display", "none", "-monitor", "none", "-semihosting",
               "-serial", "pty", "-kernel", str(firmware(self.spec.name))]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline, seen = time.monotonic() + self.timeout, b""
        while b"char device redirected to " not in seen or not seen.rstrip(b"\n").endswith(b")"):
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.__exit__()
                raise BoardError("qemu gave no pty: %s" % seen.decode(errors="replace"))
            seen += chunk
        return seen.split(b"char device redirected to ", 1)[1].split()[0].decode()

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
