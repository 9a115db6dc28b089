"""TDMPC (LeRobot `tdmpc`): TOLD networks as graphs; the MPPI/CEM planner runs in numpy on the host."""
