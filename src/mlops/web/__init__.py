"""The web UI: HTML pages whose scripts call the platform's own JSON API (ADR 0010)."""
