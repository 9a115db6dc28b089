"""Latency benchmarks: every backend side by side with eager PyTorch, per stage and end to end."""

from .runner import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
