"""Pub/sub channel names shared by publishers and subscribers."""

# Registry and deployment changes; model servers re-read the catalog on each message.
REGISTRY_EVENTS = "registry-events"
# Counter bumped with every registry event: a model server's backstop poll re-reads the
# catalog only when it moved (a message can be lost in transit; the counter is not).
REGISTRY_GENERATION = "registry-generation"
