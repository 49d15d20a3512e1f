"""Orchard: a self-hosted, content-addressed artifact repository."""

__version__ = "0.1.0"
