# Condition monitoring on the device: filters, FFT and the anomaly model (emliir, emlfft,
# emlmixture), fed window by window from a sensor or from recordings. Settings come from the
# JSON file the host writes (examples/condition_monitoring/condition_monitoring.py).
import json
from array import array

import emlfft
import emliir
import emlmixture
from cm_features import Features


def setup(settings_path):
    """(settings, Features, model) from the settings file; file names in it are relative to it."""
    with open(settings_path) as f:
        settings = json.load(f)
    base = settings_path[:settings_path.rfind("/") + 1] if "/" in settings_path else ""
    # float32 sos coefficients as their IEEE-754 bits: exact whatever the port's float parser does
    filters = [emliir.new(array("f", bytes(array("I", bits)))) for bits in settings["filters"]]
    features = Features(filters, emlfft.FFT(settings["window"]), settings["window"], settings["bins"])
    model = emlmixture.new(len(features.out), settings["n_components"])
    emlmixture.load_model(model, base + settings["model"])
    return settings, features, model


def replay(settings_path, paths, on_window=None):
    """Runs each recording (raw float32 samples, little-endian) window by window through the
    features and the model, filters restarting per recording. Returns per recording a list of
    (score, is_outlier) per window; on_window(features, score, is_outlier) sees every window."""
    settings, features, model = setup(settings_path)
    n = settings["window"]
    window = array("f", bytes(4 * n))
    score = array("f", [0.0])
    results = []
    for path in paths:
        for f in features.filters:
            f.reset()
        rows = []
        with open(path, "rb") as recording:
            while recording.readinto(window) == 4 * n:
                x = features.compute(window)
                model.score_samples(x, score)
                outlier = model.is_outlier(x)
                rows.append((score[0], outlier))
                if on_window is not None:
                    on_window(x, score[0], outlier)
        results.append(rows)
    return results


def run(sensor, settings_path, on_window):
    """Reads windows from `sensor` (an object with read_into(array('f') of n samples)) forever and
    calls on_window(score, is_outlier) after each."""
    settings, features, model = setup(settings_path)
    window = array("f", bytes(4 * settings["window"]))
    score = array("f", [0.0])
    while True:
        sensor.read_into(window)
        x = features.compute(window)
        model.score_samples(x, score)
        on_window(score[0], model.is_outlier(x))
