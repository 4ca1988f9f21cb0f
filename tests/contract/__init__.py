"""Contract suites: one behaviour, every implementation behind an interface."""
