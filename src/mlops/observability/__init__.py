"""Logging, request ids and metrics shared by every process."""
