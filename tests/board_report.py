"""Numbers the board tests measured, printed in the pytest summary by conftest.py."""

RESULTS = {}  # (board, module) -> {'ram': bytes after import, 'us': {workload.call: us per call}}


def record(board, module, workload, ram, us):
    entry = RESULTS.setdefault((board, module), {"ram": ram, "us": {}})
    for call, value in us.items():
        entry["us"]["%s.%s" % (workload, call)] = value


def lines():
    for (board, module), entry in sorted(RESULTS.items()):
        calls = ", ".join("%s %d us" % item for item in sorted(entry["us"].items()))
        yield "%-11s %-13s RAM after import %6d B; %s" % (board, module, entry["ram"], calls)
