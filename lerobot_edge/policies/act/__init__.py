"""ACT: one graph (normalized state + images -> normalized action chunk); queue/ensembling on the host."""
