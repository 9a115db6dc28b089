"""One module per policy family; each has `tiny(dir) -> checkpoint` (the suites' size) and the benchmark configs
named in registry.POLICIES."""
