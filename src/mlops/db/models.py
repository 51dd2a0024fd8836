"""Every ORM model, imported so that ``Base.metadata`` knows all tables (for Alembic)."""

from mlops.audit.models import AuditEvent
from mlops.auth.models import ApiKey, RevokedToken, User
from mlops.db.base import Base

__all__ = ["ApiKey", "AuditEvent", "Base", "RevokedToken", "User"]
