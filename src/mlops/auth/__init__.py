"""Users, roles, login tokens and API keys."""
