"""The domain: projects, packages, versions, artifacts, uploads, gc.

Nothing here imports FastAPI; errors are orchard.errors classes.
"""
