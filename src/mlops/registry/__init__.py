"""The model registry: registered models, immutable versions, aliases and their history."""
