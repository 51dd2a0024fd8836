"""Who changed what, when: an append-only log of every change."""
