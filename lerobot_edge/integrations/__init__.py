"""Fitting lerobot-edge into code users already run. `integrations.lerobot.LeRobotPolicy`: a bundle as a drop-in
for a LeRobot policy in LeRobot's record / eval scripts (the `[robots]` extra: torch and lerobot, imported
lazily)."""
