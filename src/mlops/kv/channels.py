"""Pub/sub channel names shared by publishers and subscribers."""

# Registry and deployment changes; model servers re-read the catalog on each message.
REGISTRY_EVENTS = "registry-events"
