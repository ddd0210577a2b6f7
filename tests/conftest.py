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


def pytest_terminal_summary(terminalreporter):
    """Reports the size of every native module the tests built."""
    built = sorted(build.MPY_OUT.glob("*_%s/*.mpy" % build.MPY_ABI))
    if built:
        terminalreporter.write_line("native modules built: " + ", ".join(
            "%s/%s %d B" % (p.parent.name, p.name, p.stat().st_size) for p in built))
    import board_report

    for line in board_report.lines():
        terminalreporter.write_line("board " + line)
