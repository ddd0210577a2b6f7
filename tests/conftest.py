import pytest

from mpyml import build, device


@pytest.fixture(scope="session")
def emltrees_x64():
    """Builds emltrees for the unix port once per test session."""
    return build.build("emltrees", "x64")


@pytest.fixture
def run_device(emltrees_x64):
    """Runs MicroPython code on the unix port with the built natmods; returns stdout."""
    return device.run
