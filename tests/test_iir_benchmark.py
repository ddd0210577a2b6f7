"""benchmarks/iir.py --quick runs end to end; checks only non-timing facts (timings flake)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "iir.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "iir.py"), "--quick", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| emliir float32" in result.stdout and "Target:" in result.stdout
    return json.loads(out.read_text())


def test_outputs_match_references(report):
    assert report["n_samples"] == 10000 and report["n_stages"] == 4
    assert report["float32_matches_reference"] is True
    assert report["q15_matches_reference"] is True
    contenders = report["contenders"]
    assert contenders["emliir_float32"]["max_error_vs_scipy"] < 1e-5
    # the plain loop runs the same algorithm (in the unix port's double floats)
    assert contenders["plain_python"]["max_error_vs_scipy"] < 1e-5
    assert contenders["emliir_q15"]["max_error_vs_scipy"] < 3e-3


def test_numbers_present_and_target_evaluated(report):
    for name in ("emliir_float32", "emliir_q15", "plain_python"):
        entry = report["contenders"][name]
        assert entry["us_per_sample"] > 0 and len(entry["times_us"]) >= 2, name
    assert ("ulab" in report["contenders"]) == report["has_ulab"]
    assert report["ratios"]["float32_vs_plain_python"] > 0
    assert report["target"]["met"] in (True, False)
