"""Torch building blocks shared by several policies (parameter names as torchvision/LeRobot name them)."""
