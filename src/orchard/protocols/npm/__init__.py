"""npm packages: names today; the registry protocol (packuments, tarballs,
publish) comes with its own issue."""
