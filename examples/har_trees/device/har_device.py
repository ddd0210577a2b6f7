"""Activity recognition on the device: accelerometer -> windows -> features -> emltrees -> class.

Copy to the board: har_device.py, mpu6886.py, the model's har_model.json and har_model.csv,
and install emltrees.mpy, npyfile.py and har_features.py with mip (see examples/har_trees/README.md).

    import har_device
    har_device.main()                      # M5StickC PLUS 2: MPU6886 on I2C(0, sda=21, scl=22)
    har_device.replay("har_model.json", ["recording.npy"])   # the same pipeline fed from .npy files

The sensor is any object with `n_axes` and `read_into(out, offset)` writing one sample's
integer readings (see mpu6886.MPU6886); pass your own to run().
"""

import array
import json
import time

import emltrees
import har_features
import npyfile


class Classifier:
    """The exported model with its windowing settings (har_model.json written by the training script)."""

    def __init__(self, settings_path):
        with open(settings_path) as f:
            settings = json.load(f)
        self.window = settings["window"]
        self.hop = settings["hop"]
        self.n_axes = settings["n_axes"]
        self.classes = settings["classes"]
        self.samplerate = settings["samplerate"]
        model_path = settings["model"]
        if "/" not in model_path and "/" in settings_path:
            model_path = settings_path.rsplit("/", 1)[0] + "/" + model_path
        self.model = emltrees.new(settings["n_trees"], settings["n_nodes"], settings["n_leaves"])
        emltrees.load_model(self.model, model_path)
        if self.model.n_features != har_features.n_features(self.n_axes):
            raise ValueError("%s: model takes %d features, har_features gives %d for %d axes" % (
                model_path, self.model.n_features, har_features.n_features(self.n_axes), self.n_axes))
        self.features = array.array(self.model.typecode, [0] * self.model.n_features)

    def windower(self):
        return har_features.Windower(self.window, self.hop, self.n_axes)

    def classify(self, window):
        """Class index of one window (interleaved samples)."""
        har_features.features(window, self.n_axes, self.features)
        return self.model.predict(self.features)


def replay(settings_path, paths, chunk_rows=None, timing=False):
    """Runs the pipeline over .npy recordings; returns a list of (path, [class index per window]).

    With timing=True also returns the microseconds each window took (features + prediction).
    """
    classifier = Classifier(settings_path)
    results = []
    times = []
    for path in paths:
        predictions = []
        windower = classifier.windower()
        with npyfile.Reader(path, allow_truncated=True) as reader:
            if len(reader.shape) != 2 or reader.shape[1] != classifier.n_axes or reader.fortran_order:
                raise ValueError("%s: expected a C-order recording of shape (n, %d), got %s%s" % (
                    path, classifier.n_axes, reader.shape, " (Fortran order)" if reader.fortran_order else ""))
            n_whole = reader.n_items - reader.n_items % classifier.n_axes
            consumed = 0
            for chunk in reader.read_data_chunks((chunk_rows or classifier.hop) * classifier.n_axes):
                if consumed + len(chunk) > n_whole:  # a truncated file may end inside a row
                    chunk = chunk[:n_whole - consumed]
                consumed += len(chunk)
                for window in windower.push(chunk):
                    start = time.ticks_us()
                    predictions.append(classifier.classify(window))
                    times.append(time.ticks_diff(time.ticks_us(), start))
        results.append((path, predictions))
    if timing:
        return results, times
    return results


def run(sensor, settings_path="har_model.json", on_class=None):
    """Reads the sensor at the model's sample rate forever, classifying every hop; prints the class by default."""
    classifier = Classifier(settings_path)
    if sensor.n_axes != classifier.n_axes:
        raise ValueError("sensor gives %d axes, the model was trained on %d" % (sensor.n_axes, classifier.n_axes))
    windower = classifier.windower()
    chunk = array.array("h", [0] * (classifier.hop * classifier.n_axes))
    period_us = 1000000 // classifier.samplerate
    next_sample = time.ticks_us()
    while True:
        for row in range(classifier.hop):
            while time.ticks_diff(next_sample, time.ticks_us()) > 0:
                pass
            next_sample = time.ticks_add(next_sample, period_us)
            sensor.read_into(chunk, row * classifier.n_axes)
        for window in windower.push(chunk):
            index = classifier.classify(window)
            if on_class is not None:
                on_class(index, classifier.classes[index])
            else:
                print(classifier.classes[index])


def main(settings_path="har_model.json"):
    from machine import I2C, Pin

    import mpu6886

    i2c = I2C(0, sda=Pin(21), scl=Pin(22), freq=400000)
    run(mpu6886.MPU6886(i2c), settings_path)
