"""Benchmark fixtures live beside the suite: benchmarks/configs.py writes the standard checkpoints (random
weights in LeRobot's layout, via the test suite's layout writers)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
