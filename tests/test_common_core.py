"""The integrity checks every model format shares (natmods/common/mpyml_common.h), built for the host
under ASan and UBSan (tests/c/common_driver.c): mpyml_crc32_update against zlib.crc32 (the end record
of every text format, the payload CRC of mpyml-nets) and mpyml_parse_hex32 against the strict rule of
docs/formats.md (exactly 8 hex digits of either case, nothing else), over random and edge inputs."""

from __future__ import annotations

import random
import re
import zlib

import pytest

from c_errors import error_table
from test_c_core import CFLAGS, ROOT, run

DRIVER_SOURCE = ROOT / "tests" / "c" / "common_driver.c"
ERR = {name: code for name, (code, _) in error_table().items()}


@pytest.fixture(scope="module", params=["O0", "O2"])
def driver(request, tmp_path_factory):
    import subprocess

    exe = tmp_path_factory.mktemp("common_" + request.param) / "common_driver"
    extra = ["-O2"] if request.param == "O2" else []
    proc = subprocess.run(["gcc", *CFLAGS, *extra, "-o", str(exe), str(DRIVER_SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, "gcc failed:\n" + proc.stdout + proc.stderr
    return exe


def _hex_bytes(data: bytes) -> str:
    return data.hex() if data else "-"


def test_crc32_is_zlibs_on_random_data_and_lengths(driver):
    rng = random.Random(20261130)
    cases = [b"", b"\x00", b"\xff", b"a", b"123456789", bytes(range(256)), b"\xff" * 1000, b"\x00" * 1000]
    cases += [bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 3, 4, 7, 8, 63, 64, 65, 1000, 4097))))
              for _ in range(200)]
    inits = [0, 0xFFFFFFFF, 0x80000000, 1, 0] + [rng.randrange(2**32) for _ in range(len(cases) - 5)]
    lines = ["crc %08x %s" % (init, _hex_bytes(data)) for init, data in zip(inits, cases)]
    out = run(driver, "\n".join(lines) + "\n").out
    assert out == ["%08x" % zlib.crc32(data, init) for init, data in zip(inits, cases)]
    assert out[4] == "cbf43926"  # the CRC-32 check value of b"123456789"


def test_crc32_chains_as_zlib_over_any_split(driver):
    """The loaders call it once per line, each time with the previous result (empty lines included)."""
    rng = random.Random(7)
    lines, expected = [], []
    for _ in range(150):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(0, 12)))
        chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        chunks += [b""] * rng.randrange(2)
        init = rng.choice((0, rng.randrange(2**32)))
        lines.append("crc %08x %s" % (init, " ".join(_hex_bytes(c) for c in chunks)))
        expected.append("%08x" % zlib.crc32(data, init))
    assert run(driver, "\n".join(lines) + "\n").out == expected


def test_crc32_of_nothing_is_its_input(driver):
    inits = [0, 1, 0xDEADBEEF, 0xFFFFFFFF]
    out = run(driver, "".join("crc %08x -\ncrc %08x\n" % (i, i) for i in inits)).out
    assert out == ["%08x" % i for i in inits for _ in range(2)]
    assert ["%08x" % zlib.crc32(b"", i) for i in inits] == ["%08x" % i for i in inits]


HEX32 = re.compile(rb"[0-9a-fA-F]{8}")


def _reference(text: bytes) -> str:
    """The strict rule: exactly 8 hex digits of either case (no sign, prefix, space or other byte)."""
    if HEX32.fullmatch(text):
        return "ok %08x" % int(text, 16)
    return "error %d" % ERR["BAD_HEX"]


def test_parse_hex32_follows_the_strict_rule(driver):
    rng = random.Random(20261130)
    cases = [b"", b"3f800000", b"3F800000", b"ffffffff", b"FFFFFFFF", b"00000000", b"7fc00000", b"-0000001",
             b"0x3f8000", b"3f80000", b"3f8000000", b"3f80000g", b" 3f80000", b"3f80000 ", b"+3f80000", b"3f80 000",
             b"3f80000\x00", b"\x003f80000", b"3f8000\xc3\xa9", b"\xef\xbc\x93f800000"[:8], b"3f80_000", b"3f80000\n",
             b"gggggggg", b"GGGGGGGG", b"3f800000" * 2, b"`", b"@", b"/", b":", b"G", b"g"]
    alphabet = b"0123456789abcdefABCDEFgG:/@`x- _\x00\xff"
    for _ in range(2000):
        n = rng.choice((7, 8, 8, 8, 8, 9, 0, 1, 16))
        text = bytearray(rng.choice(b"0123456789abcdefABCDEF") for _ in range(n))
        if text and rng.random() < 0.5:
            text[rng.randrange(n)] = rng.choice(alphabet)
        cases.append(bytes(text))
    cases += [bytes([b]) * 8 for b in range(256)]  # every byte value in every position
    out = run(driver, "".join("hex %s\n" % _hex_bytes(t) for t in cases)).out
    wrong = [(t, o, _reference(t)) for t, o in zip(cases, out) if o != _reference(t)]
    assert len(out) == len(cases) and not wrong, wrong[:10]
    assert sum(o.startswith("ok") for o in out) > 500 and sum(o.startswith("error") for o in out) > 500
