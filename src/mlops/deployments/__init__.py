"""Deployment policies: which versions of a model take traffic, and how."""
