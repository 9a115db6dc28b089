"""SmolVLA (LeRobot 0.6 `smolvla`): SmolVLM2 truncated + a narrower action expert, two-phase export."""
