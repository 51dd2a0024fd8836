"""Fault drills: real server processes on a throwaway PostgreSQL cluster and a throwaway
Redis, stopped, killed and drained under load (docs/reliability.md)."""
