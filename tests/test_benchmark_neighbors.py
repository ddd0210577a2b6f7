"""benchmarks/neighbors.py --quick runs end to end; checks only non-timing facts (timings flake)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIZES = [(200, 3), (300, 3), (1000, 3), (200, 64), (300, 64), (1000, 64)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "neighbors.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "neighbors.py"), "--quick", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| 300 x 3 |" in result.stdout and "Targets:" in result.stdout
    return json.loads(out.read_text())


def test_every_configuration_is_measured(report):
    assert [(r["n_items"], r["n_features"]) for r in report["results"]] == SIZES
    for r in report["results"]:
        assert r["k"] == 5 and r["native_us"] > 0 and r["plain_us"] > 0 and r["speedup"] > 0
        assert len(r["native_times_us"]) == len(r["plain_times_us"]) == report["passes"]


def test_both_contenders_agree_with_sklearn_and_the_mirror(report):
    for r in report["results"]:
        assert r["native_agrees_sklearn"] == r["n_queries"] == r["plain_agrees_sklearn"]
        assert r["native_agrees_mirror"] == r["n_queries"]


def test_no_heap_allocation_per_predict(report):
    assert report["zero_alloc"]
    for r in report["results"]:
        assert r["alloc_bytes_per_pass"] == [0] * report["passes"]
