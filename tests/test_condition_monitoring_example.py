"""examples/condition_monitoring end to end (quick settings): every held-out window on the unix
port has the host's features (bit for bit), score and is_outlier; faults are detected."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "condition_monitoring"
sys.path.insert(0, str(EXAMPLE))

import condition_monitoring  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    lines = []
    result = condition_monitoring.run(tmp_path_factory.mktemp("cm"), log=lines.append)  # the defaults: about 7 s
    result["log"] = "\n".join(lines)
    return result


def test_device_equals_host_on_every_window(report):
    assert report["n_windows_test"] == 10 * 11 + 4 * 2 * 11  # 10 held-out normal recordings, 2 per fault, 11 windows each
    assert report["features_identical"] and report["scores_identical"] and report["outliers_identical"]
    assert report["within_tolerance"] and report["max_error_normal"] <= 1e-4
    assert report["sklearn_decisions_agree"] == report["n_windows_test"]


def test_faults_detected_and_report(report):
    assert min(report["detection"].values()) >= 0.8, report["log"]
    assert report["false_alarm"] <= 0.05, report["log"]
    for name in ("imbalance", "misalignment", "bearing", "looseness", "false alarms", "time per window on the unix port"):
        assert name in report["log"]


def test_host_features_use_the_device_file():
    # the host computes features with device/cm_features.py itself, through the mirrors
    assert Path(condition_monitoring.Features.__module__ and sys.modules["cm_features"].__file__).parent == EXAMPLE / "device"


def test_run_script_is_one_command(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE / "run.py"), "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "false alarms" in result.stdout and "features bit-identical True" in result.stdout
    assert "scores bit-identical to the mirror True, is_outlier identical True" in result.stdout
