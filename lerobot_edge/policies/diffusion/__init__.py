"""Diffusion Policy: graphs `encoder` (observation history -> global_cond) and `denoise` (x_t, t, cond -> output);
the DDPM/DDIM loop runs on the host (kernels/schedulers.py)."""
