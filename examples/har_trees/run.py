"""One command: train, evaluate, export, replay on the unix port, report (see har_trees.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import har_trees  # noqa: E402

if __name__ == "__main__":
    sys.exit(har_trees.main())
