"""The backup's table of contents, and the error every refusal raises."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.errors import Invalid

FORMAT = "mlops-backup"
FORMAT_VERSION = 1
MANIFEST_KEY = "manifest.json"
OBJECTS_PREFIX = "objects/"


class BackupError(Invalid):
    """A backup cannot be made, verified or restored; the message says why and what to do."""

    code = "backup_refused"


@dataclass(frozen=True)
class StoredFile:
    """One file of the backup: its key in the backup, size and SHA-256."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectEntry:
    """One object of the platform's artifact store and the content it had."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class VersionEntry:
    """A model version row: its artifact must be among the objects, with this sha256."""

    storage_key: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    platform_version: str
    created_at: str
    dialect: str  # "postgresql" | "sqlite"
    schema_revision: str
    database: StoredFile
    counts: dict[str, int]
    objects: list[ObjectEntry]
    versions: list[VersionEntry]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise BackupError(f"{MANIFEST_KEY} is not an mlops backup manifest")
            if data.get("format_version") != FORMAT_VERSION:
                raise BackupError(
                    f"backup format version {data.get('format_version')!r} is not supported "
                    f"by this platform version (it reads version {FORMAT_VERSION}): "
                    "restore it with the platform version that made it"
                )
            return cls(
                platform_version=str(data["platform_version"]),
                created_at=str(data["created_at"]),
                dialect=str(data["dialect"]),
                schema_revision=str(data["schema_revision"]),
                database=StoredFile(**data["database"]),
                counts={str(k): int(v) for k, v in data["counts"].items()},
                objects=[ObjectEntry(**o) for o in data["objects"]],
                versions=[VersionEntry(**v) for v in data["versions"]],
                extra=dict(data.get("extra", {})),
            )
        except BackupError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(
                f"{MANIFEST_KEY} is corrupt or incomplete ({type(exc).__name__}: {exc})"
            ) from None


def object_key(sha256: str) -> str:
    return f"{OBJECTS_PREFIX}{sha256}"
