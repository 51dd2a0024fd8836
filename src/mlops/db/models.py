"""Every ORM model, imported so that ``Base.metadata`` knows all tables (for Alembic)."""

from mlops.audit.models import AuditEvent
from mlops.auth.models import ApiKey, RevokedToken, User
from mlops.db.base import Base
from mlops.deployments.models import Deployment
from mlops.registry.models import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    PlatformSetting,
    RegisteredModel,
)
from mlops.workers.models import DriftReference, DriftReport, Job, JobSchedule, JobTask

__all__ = [
    "AliasEvent",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Deployment",
    "DriftReference",
    "DriftReport",
    "Job",
    "JobSchedule",
    "JobTask",
    "ModelAlias",
    "ModelVersion",
    "PlatformSetting",
    "RegisteredModel",
    "RevokedToken",
    "User",
]
