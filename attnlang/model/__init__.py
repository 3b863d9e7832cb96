"""The analytical model and design-space exploration (DESIGN §4)."""
