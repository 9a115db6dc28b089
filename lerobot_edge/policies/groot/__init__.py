"""GR00T N1.5 (LeRobot's `groot`): config, modules with LeRobot's names, the export plan."""
