"""Drift monitoring: reference profiles, live samples, and the reports comparing them."""
