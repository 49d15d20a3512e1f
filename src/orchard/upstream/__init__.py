"""Upstream registries: the pooled HTTP client, sources, fetch-once."""
