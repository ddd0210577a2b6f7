"""examples/har_trees end to end: train on the host, replay the held-out raw recordings on the unix port."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mpyml import device

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "har_trees"
DATA_DIR = REPO.parent / "shared" / "datasets" / "har_exercise_1" / "raw" / "data"

pytestmark = pytest.mark.skipif(not any(DATA_DIR.glob("*.npy")), reason="dataset %s not present" % DATA_DIR)


def _load_example():
    spec = importlib.util.spec_from_file_location("har_trees", EXAMPLE / "har_trees.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["har_trees"] = module
    spec.loader.exec_module(module)
    return module


har_trees = _load_example()


def quick_config(tmp_path, **changes):
    """The example's config with a small grid, written beside the copied data paths."""
    import yaml

    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    for key in ("data_dir", "labels_csv"):
        config["dataset"][key] = str((EXAMPLE / config["dataset"][key]).resolve())
    config["grid"] = {"n_estimators": [10], "max_depth": [10, None]}
    config["split"]["seeds"] = [1]
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory, emltrees_x64):
    tmp = tmp_path_factory.mktemp("har")
    config = har_trees.load_config(quick_config(tmp))
    lines = []
    result = har_trees.run(config, tmp / "out", log=lines.append)
    result["log"] = "\n".join(lines)
    result["out"] = tmp / "out"
    return result


def test_device_predicts_every_held_out_window_as_the_host(report):
    assert report["same_counts"]
    assert report["device_predictions"] == report["host_predictions"]
    assert report["agree"] == report["n_windows_test"] == sum(len(p) for p in report["host_predictions"]) > 150
    assert report["mirror_agrees"] == report["n_windows_test"]
    assert "%d/%d windows agree with the host" % (report["agree"], report["agree"]) in report["log"]


def test_float32_port_predicts_every_held_out_window_as_the_host(report):
    # a port whose Python floats are float32 (as on most boards) computes the very features the host trained on
    paths = [DATA_DIR / name for name in report["test_recordings"]]
    predictions, _ = har_trees.replay_on_device(report["out"] / "har_model.json", paths, float32=True)
    assert predictions == report["host_predictions"] == report["device_predictions"]


def test_held_out_f1_floor_and_report(report):
    assert report["f1_macro"] >= 0.93, report["log"]
    assert report["confusion"].sum() == report["n_windows_test"]
    assert len(report["test_recordings"]) >= 10 and report["n_recordings"] == 50
    assert "held-out macro F1" in report["log"] and "true \\ predicted" in report["log"]
    settings = json.loads((report["out"] / "har_model.json").read_text())
    assert settings["classes"] == ["squat", "jumpingjack", "lunge", "other"] and settings["n_axes"] == 3
    assert (report["out"] / "har_model.csv").stat().st_size == report["model_bytes"]


def test_held_out_recordings_are_not_trained_on():
    config = har_trees.load_config(EXAMPLE / "config.yaml")
    recordings = har_trees.load_recordings(config, log=lambda *a: None)
    X, y, groups, counts = har_trees.window_features(recordings, config)
    assert sum(counts) == len(X) == len(y) == len(groups)
    for seed in (1, 2):
        train, test = har_trees.held_out_split(y, groups, config, seed)
        assert not set(groups[train]) & set(groups[test])
        assert set(y[test]) == set(range(len(config["classes"])))


SENSOR_LOOP = """
import array, npyfile, har_device

class RecordedSensor:
    # plays a recording back as a sensor: the real-board loop, paced at the model's sample rate
    n_axes = 3
    def __init__(self, path):
        self.shape, self.values = npyfile.load(path)
        self.row = 0
    def read_into(self, out, offset):
        for a in range(3):
            out[offset + a] = self.values[self.row * 3 + a]
        self.row += 1

classes = []
def on_class(index, name):
    classes.append(index)
    if len(classes) == 4:
        raise StopIteration
try:
    har_device.run(RecordedSensor(%(path)r), %(settings)r, on_class)
except StopIteration:
    pass
print(classes)
print(har_device.replay(%(settings)r, [%(path)r], chunk_rows=13)[0][1][:4])
"""


def test_sensor_loop_classifies_as_replay_does(report):
    path = str(DATA_DIR / report["test_recordings"][0])
    out = device.run(SENSOR_LOOP % dict(path=path, settings=str(report["out"] / "har_model.json")),
                     extra_path=har_trees.PORTABLE_DIRS)
    loop, replayed = out.strip().splitlines()
    assert loop == replayed == str(report["host_predictions"][0][:4])


def test_another_dataset_trains_from_its_config_alone(tmp_path, emltrees_x64):
    # two classes, two axes (x, z), labels from the file names, different window: only the config changes
    data = tmp_path / "data"
    data.mkdir()
    for i, path in enumerate(sorted(DATA_DIR.glob("2024-12-01T16*_*.npy"))):
        label = path.stem.rsplit("_", 1)[1]
        if label in ("jumpingjack", "squat") and path.stat().st_size >= 6000:
            recording = np.ascontiguousarray(np.load(path)[:, [0, 2]])
            np.save(data / ("rec%03d_%s.npy" % (i, label)), recording)
    config = quick_config(tmp_path, data_columns=["x", "z"], classes=["jumpingjack", "squat"], window=64, hop=32,
                          samplerate=100)
    text = config.read_text()
    import yaml

    loaded = yaml.safe_load(text)
    loaded["dataset"] = {"data_dir": str(data), "label_pattern": "_([a-z]+)\\.npy$"}
    loaded["split"].update(test_folds=3, cv_folds=3)
    config.write_text(yaml.safe_dump(loaded))
    lines = []
    result = har_trees.run(har_trees.load_config(config), tmp_path / "out", log=lines.append)
    assert result["agree"] == result["n_windows_test"] > 0 and result["same_counts"]
    assert result["stored"].n_features == 2 * 12 + 12 + 1
    assert json.loads((tmp_path / "out" / "har_model.json").read_text())["n_axes"] == 2


def test_run_script_is_one_command(tmp_path, emltrees_x64):
    config = quick_config(tmp_path)
    import subprocess

    png = tmp_path / "confusion.png"
    result = subprocess.run([sys.executable, str(EXAMPLE / "run.py"), "--config", str(config), "--out", str(tmp_path / "o"),
                             "--confusion-matrix", str(png)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "windows agree with the host" in result.stdout and "time per window on the unix port" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "grid search per held-out split" in result.stderr  # the progress bar
