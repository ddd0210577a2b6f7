"""benchmarks/cnn.py --quick runs end to end; checks only non-timing facts (timings flake)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "cnn.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cnn.py"), "--quick", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| emlcnn float32" in result.stdout and "Targets:" in result.stdout
    return json.loads(out.read_text())


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_outputs_agree_and_sizes_reported(report, network):
    r = report["networks"][network]
    assert r["int8_bit_identical"]
    assert r["float32_max_diff_vs_numpy"] < 1e-5
    assert r["plain_max_diff_vs_emlcnn"] < 1e-5  # the plain-MicroPython contender computes the same network
    assert r["weights_bytes"]["int8"] < r["weights_bytes"]["float32"]
    assert r["arena_bytes"]["int8"] * 4 == r["arena_bytes"]["float32"]
    assert r["file_bytes"]["int8"] > r["weights_bytes"]["int8"]
    for contender in ("plain", "float32", "int8"):
        assert r["us"][contender] > 0
    assert len(report["targets"]) == 4 and all(t["met"] in (True, False) for t in report["targets"])
