"""Pi0 (LeRobot 0.6 `pi0`): PaliGemma + action expert, exported as vision / prefix / denoise graphs."""
