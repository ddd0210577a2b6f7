import os

import pytest

from mpyml import build, device

# Keras 3 runs on torch here (the nets extra installs it): set before any test imports keras, so that a
# test's importorskip("keras") skips only where Keras is not installed.
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="session")
def emltrees_x64():
    """Builds emltrees for the unix port once per test session."""
    return build.build("emltrees", "x64")


@pytest.fixture
def run_device(emltrees_x64):
    """Runs MicroPython code on the unix port with the built natmods; returns stdout."""
    return device.run


def pytest_terminal_summary(terminalreporter):
    """Reports the size of every native module the tests built."""
    built = sorted(build.MPY_OUT.glob("*_%s/*.mpy" % build.MPY_ABI))
    if built:
        terminalreporter.write_line("native modules built: " + ", ".join(
            "%s/%s %d B" % (p.parent.name, p.name, p.stat().st_size) for p in built))
    import board_report

    for line in board_report.lines():
        terminalreporter.write_line("board " + line)
