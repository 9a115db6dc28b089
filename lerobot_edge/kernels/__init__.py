"""Small numeric pieces that must be identical on the exported graph and on the host (numpy only)."""
