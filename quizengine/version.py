"""The package version (a module of its own, so that modules needing it never import the app factory)."""

__version__ = "0.1.0"
