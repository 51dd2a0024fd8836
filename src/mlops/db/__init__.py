"""Database engine, sessions, models' base class and migrations."""
