"""Workflows built on fit and the results layer: `reproduce` (runs the plans of medlib.plans), cross-validation,
sweeps."""
