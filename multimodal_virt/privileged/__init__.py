"""Functions that run in the privsep daemon, one module per subsystem."""
