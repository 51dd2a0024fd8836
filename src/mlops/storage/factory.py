"""Build the configured artifact store from its URL (setting ``MLOPS_ARTIFACT_STORE``)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlops.storage.base import ArtifactStore
from mlops.storage.local import LocalArtifactStore

ACCEPTED_FORMS = "file:///absolute/path, file://relative/path or s3://bucket[/prefix]"
# S3's rules for new buckets; also keeps credentials ("user:pw@") and ports out.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def create_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
) -> ArtifactStore:
    """Return the store ``url`` names; raise ``ValueError`` naming the setting otherwise.

    - ``file:///abs/path``: :class:`LocalArtifactStore` rooted at ``/abs/path``.
    - ``file://relative/path``: the same, relative to the working directory.
    - ``s3://bucket`` or ``s3://bucket/prefix``: :class:`S3ArtifactStore`; credentials
      come from the standard AWS environment and ``s3_endpoint_url`` selects an
      S3-compatible service.
    """
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise _invalid(f"query strings and fragments are not allowed ({parts.scheme!r} URL)")
    if parts.scheme == "file":
        # "file://relative/path" puts the first segment in the authority part.
        raw = parts.netloc + parts.path
        if not raw:
            raise _invalid("the file:// URL has no path")
        return LocalArtifactStore(Path(unquote(raw)))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET_RE.fullmatch(bucket):
            raise _invalid("the s3:// URL needs a valid bucket name (3-63 of [a-z0-9.-])")
        prefix = unquote(parts.path).strip("/")
        from mlops.storage.s3 import S3ArtifactStore  # boto3 only when S3 is configured

        try:
            return S3ArtifactStore(bucket, prefix, endpoint_url=s3_endpoint_url, region=s3_region)
        except ValueError as exc:
            raise _invalid(f"the s3:// prefix is not valid ({exc})") from exc
    # The value itself is left out of the message: a mistyped URL may hold credentials.
    scheme = repr(parts.scheme) if parts.scheme else "no scheme"
    raise _invalid(f"unsupported URL ({scheme})")


def _invalid(reason: str) -> ValueError:
    return ValueError(f"MLOPS_ARTIFACT_STORE: {reason}; expected {ACCEPTED_FORMS}.")
