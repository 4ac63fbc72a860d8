"""Workflows built on fit: named reproduction plans (reproduce), cross-validation, sweeps, ensembles."""
