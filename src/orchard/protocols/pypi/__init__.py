"""Python packages: PEP 503/691 simple API, PEP 658 metadata, twine uploads,
and the caching proxy of upstream indexes."""
