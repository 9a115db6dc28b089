"""VQ-BeT (LeRobot `vqbet`): GPT over observation tokens, residual-VQ code logits + offsets, VQ-VAE decoder."""
