"""Registry knowledge: kinds of registries, image references, platforms and credentials."""
