"""The manifest's signature: whoever can write the backup bucket but does not hold the
platform's signing key cannot plant rows or models in a later restore.

The manifest names the sha256 of every other file of the backup, so signing it signs
them all. The signature is an HMAC-SHA256 of the manifest's bytes under a key derived
from MLOPS_SECRET_KEY (a key for this use alone), stored beside it as ``manifest.sig``
and written before it (the manifest is still written last). Verification accepts the
current key and the verify-only keys of a rotation (MLOPS_SECRET_KEY_PREVIOUS), so a
backup made before a rotation restores after it when the old key is set there.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from mlops.backup.manifest import MANIFEST_KEY, BackupError
from mlops.config import Settings, ensure_secret_key, previous_secret_keys

SIGNATURE_KEY = "manifest.sig"
_LABEL = b"mlops backup manifest v1"


def signing_keys(settings: Settings) -> tuple[str, ...]:
    """The key that signs (first), then those that only verify."""
    return (ensure_secret_key(settings), *previous_secret_keys(settings))


def sign(manifest: bytes, key: str) -> bytes:
    derived = hmac.new(key.encode(), _LABEL, hashlib.sha256).digest()
    return hmac.new(derived, manifest, hashlib.sha256).hexdigest().encode()


def check(manifest: bytes, signature: bytes | None, keys: Sequence[str]) -> None:
    """Refuse a manifest without a signature, or whose signature no key gives."""
    if signature is None:
        raise BackupError(
            f"the backup's {MANIFEST_KEY} is not signed (no {SIGNATURE_KEY}): it was made by "
            "a platform version that did not sign backups, or the signature was removed. "
            "Nothing was changed; restore it with the version that made it if you trust it"
        )
    matches = [hmac.compare_digest(signature.strip(), sign(manifest, key)) for key in keys]
    if not any(matches):
        raise BackupError(
            f"the backup's {MANIFEST_KEY} does not match its signature under MLOPS_SECRET_KEY "
            "or MLOPS_SECRET_KEY_PREVIOUS: it was altered after the backup was made, or the "
            "backup was signed with another key (set that key in MLOPS_SECRET_KEY_PREVIOUS). "
            "Nothing was changed"
        )
