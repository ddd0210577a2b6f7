"""The portable half of the device's text-format reader (natmods/common/mpyml_text.h) on the host.

tests/c/text_driver.c is built with ASan and UBSan and fed lines; every answer is checked
against a Python model of the rules in docs/formats.md ("Text formats"): a line stripped of
ASCII whitespace (MicroPython's str.strip()), split at ',', blank and '#' lines no records,
MicroPython's UTF-8 check, strict decimals (-?[0-9]+, ranges on the full value), %XX label
escapes, 8 or 16 hex digits, zlib's CRC-32. A seeded fuzz of random and mutated lines runs too.
"""

from __future__ import annotations

import os
import random
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "c" / "text_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(ROOT / "natmods" / "common")]
SPACE = b" \t\n\r\x0b\x0c"
FIELD_CHARS, HEAD_CHARS = 24, 40
INT64 = (-(2**63), 2**63 - 1)  # the driver's range; a magnitude above 2**63 - 1 is out of every range


@pytest.fixture(scope="module", params=[[], ["-O2"]], ids=["O0", "O2"])
def driver(tmp_path_factory, request) -> Path:
    exe = tmp_path_factory.mktemp("text") / "text_driver"
    proc = subprocess.run(["gcc", *CFLAGS, *request.param, "-o", str(exe), str(SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def run(exe: Path, data: bytes, mode: str) -> list[str]:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([str(exe), mode], input=data, capture_output=True, timeout=120, env=env)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")
    return proc.stdout.decode().splitlines()


def utf8_ok(b: bytes) -> bool:
    """MicroPython's utf8_check (py/unicode.c): lax about overlongs and surrogates."""
    need = 0
    for c in b:
        if need:
            if c & 0xC0 != 0x80:
                return False
            need -= 1
        elif c >= 0xC0:
            if c >= 0xF8:
                return False
            need = (0xE5 >> ((c >> 3) & 0x6)) & 3
        elif c >= 0x80:
            return False
    return need == 0


def decimal(text: bytes, lo: int, hi: int) -> tuple[int, int]:
    digits = text[1:] if text[:1] == b"-" else text
    if not digits or any(not 48 <= c <= 57 for c in digits):
        return 1, 0
    value = int(text)
    return (0, value) if lo <= value <= hi and abs(value) < 2**63 else (2, 0)


def chars(b: bytes, n: int) -> bytes:
    """The first n characters of UTF-8 bytes (a continuation byte belongs to the one before)."""
    out, count = bytearray(), 0
    for c in b:
        starts = c & 0xC0 != 0x80
        if starts and count == n:
            break
        if starts or out:
            if not starts and len(out) >= 4 * n:
                break
            out.append(c)
            count += starts
    return bytes(out)


def expected_lines(data: bytes) -> list[str]:
    out = []
    lines = data.split(b"\n")
    ends = [True] * (len(lines) - 1) + [False]
    if lines[-1] == b"":
        lines, ends = lines[:-1], ends[:-1]
    for line, ended in zip(lines, ends):
        stripped = line.strip(SPACE)
        if not stripped:
            out.append("B")
        elif stripped[:1] == b"#":
            out.append("C")
        else:
            fields = stripped.split(b",")
            valid = utf8_ok(line)  # messages quote only lines that passed the UTF-8 check
            for f in fields:
                status, value = decimal(f, *INT64)
                out.append("F %d %s %d %d" % (len(f), chars(f, FIELD_CHARS).hex() or "-" if valid else "?", status, value))
            out.append("R %d" % len(fields))
            out.append("H %s" % (chars(stripped, HEAD_CHARS).hex() or "-" if valid else "?"))
        out.append("L %d %d" % (not utf8_ok(line), not ended))
    return out


LINES = [
    b"mpyml-iir,2\n", b"  dtype , float32 \r\n", b"\n", b"   \t\n", b"# a comment, with commas\n",
    b"a,,b,\n", b",\n", b"label,caf\xc3\xa9 au lait\n", b"label,\xff\xfe\n", b"x" * 300 + b",y\n",
    b"end,12,0a0b0c0d", b"-0,007,-,--1,1-,18446744073709551616,-9223372036854775808\n",
    b"\xe2\x82\xac" * 50 + b"\n", b"1 2,3\t,4\x0b\n", b"#\n", b"  #x", b"tail without end",
]


def device_lines(exe: Path, data: bytes) -> list[str]:
    """The driver's answer, the kept text of lines that fail the UTF-8 check masked as '?'."""
    out, block = [], []
    for line in run(exe, data, "lines"):
        block.append(line)
        if line.startswith("L "):
            if line.split()[1] == "1":
                block = [" ".join(b.split()[:2] + ["?"] + b.split()[3:]) if b[0] == "F" else
                         ("H ?" if b[0] == "H" else b) for b in block]
            out += block
            block = []
    return out


def test_lines_are_stripped_split_and_checked_as_the_formats_say(driver):
    data = b"".join(LINES)
    assert device_lines(driver, data) == expected_lines(data)


def test_decimals_are_strict_and_range_checked_on_their_full_value(driver):
    cases = [("0", 0, 10), ("-0", 0, 10), ("007", 0, 10), ("11", 0, 10), ("-32768", -32768, 32767),
             ("-32769", -32768, 32767), ("+5", 0, 10), (" 5", 0, 10), ("5 ", 0, 10), ("", 0, 10), ("-", 0, 10),
             ("1_0", 0, 100), ("18446744073709551616", 0, 2**31), ("18446744073709551617", -1, 2**31),
             ("9" * 40, 0, 10), ("0" * 60 + "3", 0, 10), ("2147483648", 0, 2**31), ("\u0663", 0, 10)]
    data = b"".join(b"%d %d %s\n" % (lo, hi, text.encode()) for text, lo, hi in cases)
    want = ["D %d %d" % decimal(text.encode(), lo, hi) for text, lo, hi in cases]
    assert run(driver, data, "decimal") == want


def unescape(b: bytes) -> tuple[int, bytes]:
    out, i = bytearray(), 0
    while i < len(b):
        if b[i] == 37:
            pair = b[i + 1 : i + 3]
            if len(pair) != 2 or not all(48 <= c <= 57 or 65 <= c <= 70 for c in pair):
                return 0, b""
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return 1, bytes(out)


def test_label_escapes_need_two_uppercase_hex_digits(driver):
    cases = [b"plain", b"a%2Cb", b"%25", b"%2c", b"%2", b"%", b"x%G0", b"%00%7F%20", b"caf\xc3\xa9%23"]
    want = ["E %d %s" % (ok, text.hex() or "-") for ok, text in map(unescape, cases)]
    assert run(driver, b"\n".join(cases) + b"\n", "unescape") == want


def test_hex_fields_are_exactly_8_or_16_digits(driver):
    cases = [b"3f800000", b"3F800000", b"3f80000", b"3f8000000", b"-0000001", b"0x3f8000", b"3ff0000000000000",
             b"3ff000000000000g", b"        "]

    def parse(b, n):
        ok = len(b) == n and all(chr(c) in "0123456789abcdefABCDEF" for c in b)
        return (0, int(b, 16)) if ok else (4, 0)  # MPYML_ERR_BAD_HEX (mpyml_common.h)

    out = run(driver, b"\n".join(cases) + b"\n", "hex")
    for case, line in zip(cases, out):
        _, s32, b32, s64, b64 = line.split()
        want32, want64 = parse(case, 8), parse(case, 16)
        assert (int(s32) == 0, int(s64) == 0) == (want32[0] == 0, want64[0] == 0), case
        if want32[0] == 0:
            assert int(b32, 16) == want32[1]
        if want64[0] == 0:
            assert int(b64, 16) == want64[1]


def test_utf8_check_is_micropythons(driver):
    rng = random.Random(7)
    cases = [b"", b"ascii", b"caf\xc3\xa9", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xf0\x9f\x98\x80"]
    cases += [bytes(rng.randrange(0x7F, 0x100) for _ in range(rng.randrange(1, 6))).replace(b"\n", b"") for _ in range(300)]
    out = run(driver, b"\n".join(cases) + b"\n", "utf8")
    assert out == ["V %d" % utf8_ok(c) for c in cases]


def test_crc32_is_zlibs(driver):
    data = bytes(random.Random(3).randrange(256) for _ in range(5000))
    assert run(driver, data, "crc") == ["K %08x" % zlib.crc32(data)]


def test_fuzzed_lines_never_crash_and_match_the_model(driver):
    rng = random.Random(2026)
    alphabet = b"0123456789abcdef-,# \t\r\x0b\x0c%\xc3\xa9\xff\x80end"
    for _ in range(40):
        parts = []
        for _ in range(rng.randrange(1, 60)):
            line = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
            parts.append(line + (b"\n" if rng.random() < 0.95 else b""))
        data = b"".join(parts)
        assert device_lines(driver, data) == expected_lines(data)
