"""Where a job reads and writes: a path in the platform's storage, or ``s3://``.

A platform path is a key of the artifact store (``datasets/...`` for uploaded data
sets, ``jobs/...`` for job outputs); it works whether that store is a directory or
S3. ``s3://bucket/key`` reaches buckets at ``MLOPS_S3_ENDPOINT_URL``, and only those
listed in ``MLOPS_JOB_S3_BUCKETS``: the platform's credentials may reach more than
its users should. ``file://`` is refused outright: the data directory holds the
database and the signing key, and a job must not read the server's disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlops.errors import Forbidden, Invalid
from mlops.storage import validate_key

INPUT_PREFIXES = ("datasets/", "jobs/")
OUTPUT_PREFIXES = ("datasets/",)
FORMATS = ("csv", "parquet", "jsonl")
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
_EXTENSIONS[".ndjson"] = "jsonl"
MAX_S3_KEY = 1024


@dataclass(frozen=True, slots=True)
class Location:
    scheme: Literal["platform", "s3"]
    key: str
    bucket: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.scheme == "s3" else self.key


def format_of(uri: str) -> str | None:
    """The format a file name implies (``.csv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``)."""
    lowered = uri.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    return None


def parse_location(
    uri: str,
    *,
    allowed_buckets: frozenset[str],
    role: Literal["input", "output"],
    prefixes: tuple[str, ...] | None = None,
) -> Location:
    """``uri`` as a Location, or a 422/403 that says what is accepted. ``prefixes``
    overrides where platform paths may be (workers also write ``jobs/``)."""
    accepted = (
        "a path in the platform's storage (the 'uri' that POST /api/v1/datasets answers, "
        "e.g. datasets/<id>/data.csv) or s3://BUCKET/KEY"
    )
    scheme, sep, rest = uri.partition("://")
    if not sep:
        if prefixes is None:
            prefixes = INPUT_PREFIXES if role == "input" else OUTPUT_PREFIXES
        try:
            validate_key(uri)
        except ValueError:
            raise Invalid(
                f"{role} {uri!r} is not a valid platform path (lower-case letters, digits, "
                f"'.', '_', '-' and '/'); expected {accepted}",
                code="invalid_location",
            ) from None
        if not uri.startswith(prefixes):
            raise Invalid(
                f"{role} {uri!r} must be under {' or '.join(prefixes)} in the platform's "
                f"storage; expected {accepted}",
                code="invalid_location",
            )
        return Location("platform", uri)
    if scheme == "file":
        raise Forbidden(
            f"{role} {uri!r}: file:// paths are refused, a job must not read or write the "
            "server's disk; upload the data set with POST /api/v1/datasets and use the "
            "'uri' it answers",
            code="location_forbidden",
        )
    if scheme != "s3":
        raise Invalid(
            f"{role} {uri!r}: the {scheme!r} scheme is not supported; expected {accepted}",
            code="invalid_location",
        )
    bucket, _, key = rest.partition("/")
    if not bucket or not key or len(key) > MAX_S3_KEY or not key.isprintable():
        raise Invalid(f"{role} {uri!r} is not a valid s3://BUCKET/KEY URI", code="invalid_location")
    if bucket not in allowed_buckets:
        allowed = ", ".join(sorted(allowed_buckets)) or "none"
        raise Forbidden(
            f"{role} {uri!r}: jobs may not use bucket {bucket!r} (allowed: {allowed}; an "
            "admin lists buckets in MLOPS_JOB_S3_BUCKETS)",
            code="location_forbidden",
        )
    return Location("s3", key, bucket)
