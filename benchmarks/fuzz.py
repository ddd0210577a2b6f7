"""Fuzzing every model-file loader at scale: tests/fuzzing.py's generator and runner, >= 10,000
mutants per format by default, on the unix port's real loaders against the host readers.

Prints one table row per format: mutants tried, clean errors (ValueError/TypeError/MemoryError
with a message), loads, crashes (the interpreter died, another exception type, an empty message,
or a host reader raising something else than ValueError), hangs (no output for 20 s), silent
accepts (the device loaded a file the host reader rejects) and host/device disagreements (the
host reads what the device refuses, or their predictions differ). Also: truncated files loaded
(must be 0) and the first findings of each kind.

    python benchmarks/fuzz.py [--count N] [--seed S] [--formats mpyml-iir npy ...]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exporter"))
sys.path.insert(0, str(REPO / "tests"))

import fuzzing  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000, help="mutants per format (default 10000)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--formats", nargs="*", default=sorted(fuzzing.FORMATS), choices=sorted(fuzzing.FORMATS))
    args = parser.parse_args(argv)
    reports = []
    t0 = time.monotonic()
    for name in args.formats:
        report = fuzzing.fuzz(fuzzing.FORMATS[name], args.count, seed=args.seed)
        reports.append(report)
        print("%s: %d mutants in %.0f s, %d truncated (%d loaded)" % (name, report.tried, report.seconds,
                                                                     report.truncated, report.truncated_loaded), flush=True)
        counts = collections.Counter((problem, kind) for problem, kind, _, _ in report.findings)
        shown = set()
        for problem, kind, detail, _ in report.findings:
            if (problem, kind) not in shown:
                shown.add((problem, kind))
                print("  %d x %s (%s): %s" % (counts[(problem, kind)], problem, kind, detail[:300]))
    print()
    print(fuzzing.format_table(reports))
    print("\n%d mutants in %.0f s" % (sum(r.tried for r in reports), time.monotonic() - t0))
    bad = sum(r.crashes + r.hangs + r.silent_accepts + r.disagreements + r.truncated_loaded for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
