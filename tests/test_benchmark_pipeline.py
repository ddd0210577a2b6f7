"""benchmarks/pipeline.py --quick runs end to end; checks only non-timing facts (timings flake)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "pipeline.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pipeline.py"), "--quick", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| native pipeline: emltrees `model.predict(x)`, steps in the model file |" in result.stdout and "Targets:" in result.stdout
    return json.loads(out.read_text())


def test_every_contender_is_measured(report):
    for name in ("native", "composed", "plain", "bare"):
        assert len(report["%s_times_us" % name]) == report["passes"]
        assert report["%s_best_us" % name] > 0


def test_both_paths_agree_with_sklearn_and_the_mirror(report):
    n = report["n_rows"]
    assert report["native_agrees_mirror"] == n
    assert report["composed_agrees_native"] == n
    assert report["native_agrees_sklearn"] >= 0.995 * n
    assert report["plain_agrees_sklearn"] >= 0.995 * n


def test_native_pipeline_allocates_nothing(report):
    assert report["alloc_bytes_per_pass"] == [0] * report["passes"]


def test_model_files_are_counted(report):
    assert 0 < report["steps_file_bytes"] < report["plain_py_bytes"]
    assert report["model_file_bytes"] > report["trees_file_bytes"]
    assert report["trees_file_bytes"] > 0
