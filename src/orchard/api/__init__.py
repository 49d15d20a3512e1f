"""The /api/v1 REST routers."""
