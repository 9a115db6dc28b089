"""Pi0.5 (LeRobot 0.6 `pi05`): state discretized into the prompt, adaRMS time conditioning in the expert."""
