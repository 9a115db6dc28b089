"""Synthetic LeRobot inputs for the tests and the benchmarks: checkpoints with seeded random weights in LeRobot's
exact on-disk layout (`testing.checkpoints.<family>`, written without LeRobot installed, using our own modules
only to learn state-dict shapes) and LeRobot v3 datasets (`testing.dataset`). Never imported by the library."""
