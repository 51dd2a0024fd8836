"""Per-version traffic over the last minutes (requests/s, p95 latency, error rate)."""
