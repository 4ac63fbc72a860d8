"""The package version, in a leaf module: the engine and the report read it without importing the package root."""

__version__ = "0.2.0"
