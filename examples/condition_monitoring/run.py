"""One command: simulate, train, export, replay on the unix port, report (see condition_monitoring.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import condition_monitoring  # noqa: E402

if __name__ == "__main__":
    sys.exit(condition_monitoring.main())
