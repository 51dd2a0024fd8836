"""The HTTP API process: wires the features' routers into one ASGI app."""
