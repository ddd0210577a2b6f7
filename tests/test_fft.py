"""emlfft on the unix port of MicroPython: parity with numpy.fft at every size,
bit-exact agreement with the numpy mirror (mpyml.fft), zero heap allocation,
bad input, NaN/inf inputs, memory taken at construction."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mpyml import build, device
from mpyml import fft as mirror

SIZES = [1 << k for k in range(3, 13)]
PARITY = 1e-5  # the bound: max abs error <= 1e-5 * n * max|x|
SEED = 99


@pytest.fixture(scope="module")
def emlfft_x64():
    return build.build("emlfft", "x64")


@pytest.fixture
def run_device(emlfft_x64):
    return device.run


def inputs(n: int, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t = np.arange(n)
    impulse = np.zeros(n)
    impulse[n // 5] = -4.0
    return {
        "random": (rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)),
        "random_real": (rng.normal(size=n) * 100, np.zeros(n)),
        "sine": (np.sin(2 * np.pi * 3 * t / n) + 0.25 * np.sin(2 * np.pi * (n / 4 + 0.5) * t / n), np.zeros(n)),
        "impulse": (impulse, np.zeros(n)),
    }


_PARITY_SCRIPT = """
import array, emlfft
results = []
with open({in_path!r}, 'rb') as src, open({out_path!r}, 'wb') as dst:
    for n in {sizes!r}:
        fft = emlfft.FFT(n)
        assert fft.n == n
        spectrum = array.array('f', bytes(4 * (n // 2 + 1)))
        for _ in range({n_signals}):
            x = array.array('f', bytes(4 * n))
            y = array.array('f', bytes(4 * n))
            src.readinto(x)
            src.readinto(y)
            re, im = array.array('f', x), array.array('f', y)
            fft.run(re, im)
            dst.write(re)
            dst.write(im)
            re, im = array.array('f', x), array.array('f', y)
            fft.inverse(re, im)
            dst.write(re)
            dst.write(im)
            fft.magnitude(x, spectrum)
            dst.write(spectrum)
            assert fft.power(x, spectrum) is spectrum
            dst.write(spectrum)
print('done')
"""


def test_parity_every_size(run_device):
    """forward, inverse, magnitude and power at n = 8..4096 on random, sine and impulse inputs."""
    rng = np.random.default_rng(SEED)
    cases = [(n, name, x.astype(np.float32), y.astype(np.float32)) for n in SIZES for name, (x, y) in inputs(n, rng).items()]
    n_signals = len(inputs(8, rng))
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        in_path.write_bytes(b"".join(x.astype("<f4").tobytes() + y.astype("<f4").tobytes() for _, _, x, y in cases))
        assert run_device(_PARITY_SCRIPT.format(in_path=str(in_path), out_path=str(out_path), sizes=SIZES,
                                                n_signals=n_signals)).strip() == "done"
        raw = np.frombuffer(out_path.read_bytes(), dtype="<f4")
    pos = 0
    for n, name, x, y in cases:
        fwd, inv = raw[pos:pos + 2 * n], raw[pos + 2 * n:pos + 4 * n]
        pos += 4 * n
        mag = raw[pos:pos + n // 2 + 1]
        power = raw[pos + n // 2 + 1:pos + n + 2]
        pos += n + 2
        what = "%s n=%d" % (name, n)
        z = x.astype(np.float64) + 1j * y
        want = np.fft.fft(z)
        err = np.max(np.abs(fwd[:n] + 1j * fwd[n:].astype(np.float64) - want))
        assert err <= PARITY * n * np.max(np.abs(z)), (what, err)
        err_inv = np.max(np.abs(inv[:n] + 1j * inv[n:].astype(np.float64) - np.fft.ifft(z)))
        assert err_inv <= PARITY * np.max(np.abs(want)), (what, "inverse", err_inv)
        spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
        assert np.max(np.abs(mag - spectrum)) <= PARITY * n * np.max(np.abs(x)), (what, "magnitude")
        assert np.max(np.abs(np.sqrt(power.astype(np.float64)) - spectrum)) <= PARITY * n * np.max(np.abs(x)), (what, "power")
        # the device computes exactly what the numpy mirror of the float32 arithmetic computes
        assert np.array_equal(fwd.view(np.uint32), np.concatenate(mirror.forward(x, y)).view(np.uint32)), what
        assert np.array_equal(inv.view(np.uint32), np.concatenate(mirror.inverse(x, y)).view(np.uint32)), what
        assert np.array_equal(mag.view(np.uint32), mirror.real_spectrum(x, False).view(np.uint32)), what
        assert np.array_equal(power.view(np.uint32), mirror.real_spectrum(x, True).view(np.uint32)), what
    assert pos == len(raw)


def test_run_then_inverse_round_trip(run_device):
    out = run_device("""
import array, emlfft
fft = emlfft.FFT(256)
x = array.array('f', [((i * 37) % 101) / 50.0 - 1.0 for i in range(256)])
re, im = array.array('f', x), array.array('f', bytes(4 * 256))
fft.run(re, im)
fft.inverse(re, im)
print(max(abs(a - b) for a, b in zip(re, x)), max(abs(v) for v in im))
""")
    err_re, err_im = map(float, out.split())
    assert err_re <= 1e-6 and err_im <= 1e-6


def test_no_heap_allocation(run_device):
    out = run_device("""
import array, gc, emlfft

def deltas(n):
    fft = emlfft.FFT(n)
    re = array.array('f', range(n))
    im = array.array('f', bytes(4 * n))
    out = array.array('f', bytes(4 * (n // 2 + 1)))
    run, inverse, magnitude, power = fft.run, fft.inverse, fft.magnitude, fft.power
    result = []
    for call in (lambda: run(re, im), lambda: inverse(re, im), lambda: magnitude(re, out), lambda: power(re, out)):
        call()
        gc.collect()
        before = gc.mem_alloc()
        for _ in range(20):
            call()
        result.append(gc.mem_alloc() - before)
    return result

for n in (8, 512, 4096):
    print(n, *deltas(n))
""")
    for line in out.splitlines():
        n, *deltas = map(int, line.split())
        assert deltas == [0, 0, 0, 0], (n, deltas)


def test_memory_taken_at_construction(run_device):
    """FFT(n) takes 8n bytes (twiddles and scratch) and a small object; mpyml.fft.ram_bytes says so."""
    out = run_device("""
import gc, emlfft
for n in (8, 1024, 4096):
    gc.collect()
    before = gc.mem_alloc()
    fft = emlfft.FFT(n)
    gc.collect()
    print(n, gc.mem_alloc() - before)
    del fft
""")
    for line in out.splitlines():
        n, taken = map(int, line.split())
        assert mirror.ram_bytes(n) <= taken <= mirror.ram_bytes(n) + 64, (n, taken)


_ERRORS_SCRIPT = """
import array, emlfft
fft = emlfft.FFT(16)
f16 = array.array('f', bytes(64))
g16 = array.array('f', bytes(64))
f9 = array.array('f', bytes(36))
def attempt(label, fn):
    try:
        fn()
        print(label, '| no error')
    except Exception as e:
        print(label, '|', type(e).__name__, '|', e)

for n in (0, -8, 1, 4, 7, 12, 1000, 8192, 1 << 31, -(1 << 31), 1 << 40, 1 << 70):
    attempt('size %d' % n, lambda: emlfft.FFT(n))
attempt('size float', lambda: emlfft.FFT(8.0))
attempt('size str', lambda: emlfft.FFT('8'))
attempt('size none', lambda: emlfft.FFT())
attempt('size two', lambda: emlfft.FFT(8, 8))
attempt('run real typecode', lambda: fft.run(array.array('d', bytes(128)), g16))
attempt('run imag typecode', lambda: fft.run(f16, array.array('h', bytes(32))))
attempt('run real list', lambda: fft.run([0.0] * 16, g16))
attempt('run real bytes', lambda: fft.run(bytes(64), g16))
attempt('run real length', lambda: fft.run(f9, g16))
attempt('run imag length', lambda: fft.run(f16, array.array('f', bytes(68))))
attempt('run same array', lambda: fft.run(f16, f16))
attempt('run readonly', lambda: fft.run(memoryview(bytes(64)), g16))
attempt('inverse length', lambda: fft.inverse(f16, f9))
attempt('magnitude x length', lambda: fft.magnitude(f9, array.array('f', bytes(36))))
attempt('magnitude out length', lambda: fft.magnitude(f16, array.array('f', bytes(32))))
attempt('power out typecode', lambda: fft.power(f16, array.array('d', bytes(72))))
attempt('power x typecode', lambda: fft.power(array.array('h', bytes(32)), array.array('f', bytes(36))))
attempt('method on other object', lambda: emlfft.FFT.run(3, f16, g16))
attempt('set n', lambda: setattr(fft, 'n', 4))
attempt('missing attribute', lambda: fft.nope)
attempt('ok', lambda: fft.run(f16, g16))
"""


def test_bad_input_raises_clear_errors(run_device):
    lines = dict(line.split(" | ", 1) for line in run_device(_ERRORS_SCRIPT).splitlines())
    size_error = "ValueError | emlfft.FFT: n must be a power of two from 8 to 4096, got %d"
    for n in (0, -8, 1, 4, 7, 12, 1000, 8192, 1 << 31, -(1 << 31), 1 << 40, 1 << 70):
        assert lines["size %d" % n] == size_error % n, n
    assert lines["size float"].startswith("TypeError")
    assert lines["size str"].startswith("TypeError")
    assert lines["size none"].startswith("TypeError") and lines["size two"].startswith("TypeError")
    assert lines["run real typecode"] == "TypeError | real: expected array('f'), got typecode 'd'"
    assert lines["run imag typecode"] == "TypeError | imag: expected array('f'), got typecode 'h'"
    assert lines["run real list"] == "TypeError | real: expected array('f'), got list"
    assert lines["run real bytes"].startswith("TypeError | real: expected array('f')")
    assert lines["run real length"] == "ValueError | real: expected 16 values, got 9"
    assert lines["run imag length"] == "ValueError | imag: expected 16 values, got 17"
    assert lines["run same array"] == "ValueError | real and imag must be two different arrays"
    assert lines["run readonly"].startswith("TypeError | real:")
    assert lines["inverse length"] == "ValueError | imag: expected 16 values, got 9"
    assert lines["magnitude x length"] == "ValueError | x: expected 16 values, got 9"
    assert lines["magnitude out length"] == "ValueError | out: expected 9 values, got 8"
    assert lines["power out typecode"] == "TypeError | out: expected array('f'), got typecode 'd'"
    assert lines["power x typecode"] == "TypeError | x: expected array('f'), got typecode 'h'"
    # MicroPython checks self itself: "argument should be a 'FFT' not a 'int'"
    assert lines["method on other object"].startswith("TypeError") and "'FFT'" in lines["method on other object"]
    assert lines["set n"].startswith("AttributeError")
    assert lines["missing attribute"].startswith("AttributeError")
    assert lines["ok"] == "no error"


def test_nan_and_inf_propagate(run_device):
    out = run_device("""
import array, emlfft
for n in (8, 1024):
    fft = emlfft.FFT(n)
    for special in (float('nan'), float('inf'), -float('inf')):
        re = array.array('f', range(n))
        im = array.array('f', bytes(4 * n))
        re[n // 3] = special
        fft.run(re, im)
        spectrum = array.array('f', bytes(4 * (n // 2 + 1)))
        x = array.array('f', range(n))
        x[1] = special
        fft.power(x, spectrum)
        fft.magnitude(x, spectrum)
        print(n, all(v != v or v in (float('inf'), -float('inf')) for v in list(re)[:1]), spectrum[0] != spectrum[0] or abs(spectrum[0]) == float('inf'))
print('alive')
""")
    lines = out.splitlines()
    assert lines[-1] == "alive"
    for line in lines[:-1]:
        assert re.fullmatch(r"\d+ True True", line), line


def test_stub_documents_every_call(emlfft_x64):
    """Every public name of the module and of FFT appears in the typing stub, and no other."""
    stub = (build.NATMODS_DIR / "emlfft" / "emlfft.pyi").read_text()
    out = device.run("import emlfft\nprint(sorted(n for n in dir(emlfft) if not n.startswith('_')))\n"
                     "print(sorted(n for n in dir(emlfft.FFT(8)) if not n.startswith('_')))")
    module_names, fft_names = (eval(line) for line in out.splitlines())
    assert module_names == ["FFT"]
    assert set(fft_names) == {"run", "inverse", "magnitude", "power", "n"}
    for name in fft_names:
        assert re.search(r"(def %s\(|^    %s: )" % (name, name), stub, re.M), name
