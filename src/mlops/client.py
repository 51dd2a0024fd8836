"""A small synchronous Python client of the platform's HTTP API.

It imports httpx and the standard library only, never the server's modules, so a
script or a CLI command that uses it starts in a fraction of a second.

For training scripts and notebooks::

    from mlops.client import Client

    with Client.from_login() as client:  # the token kept by `mlops login`
        version = client.push("model.skops", "churn", alias="production")

Every method either returns the decoded JSON answer or raises ``ClientError``.
Model files are streamed from and to disk, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from mlops import __version__

ProgressCallback = Callable[[int, int], None]
"""``callback(bytes_done, total)``; ``total`` is 0 when the size is not known."""

DEFAULT_TIMEOUT = 30.0
# Uploads are validated (loaded and run) before the server answers, so their read
# timeout must outlast that; it is a per-operation limit, not a total one.
DEFAULT_TRANSFER_TIMEOUT = 300.0
_CHUNK = 1 << 20


class ClientError(Exception):
    """An error answer of the platform, or a failure to get one.

    ``status_code`` is the HTTP status, or 0 when there was no answer (the server
    could not be reached, no login is kept, a download failed its checksum).
    ``code`` is the platform's stable, machine-readable error code.
    """

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message

    def __str__(self) -> str:
        if self.status_code:
            return f"{self.message} ({self.status_code} {self.code})"
        return self.message

    @classmethod
    def from_response(cls, response: httpx.Response) -> ClientError:
        """Built from the ``{"error": {"code", "message"}}`` body, else the status text."""
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            reason = response.reason_phrase or "error"
            return cls(response.status_code, "http_error", f"HTTP {response.status_code} {reason}")


class _ProgressFile(io.FileIO):
    """A file opened for reading that reports how much of it has been read.

    httpx's multipart encoder reads file objects in chunks (and takes their size
    from ``fileno()``), so reads are what the request sends.
    """

    def __init__(self, path: Path, progress: ProgressCallback | None) -> None:
        super().__init__(path, "rb")
        self._total = os.fstat(self.fileno()).st_size
        self._done = 0
        self._progress = progress

    def read(self, size: int | None = -1, /) -> bytes:
        chunk: bytes = super().read(size)
        if chunk:
            self._done += len(chunk)
            if self._progress is not None:
                self._progress(self._done, self._total)
        return chunk

    def seek(self, pos: int, whence: int = os.SEEK_SET, /) -> int:
        # httpx rewinds before sending (and again on a retry): count from there.
        offset = super().seek(pos, whence)
        self._done = offset
        return offset


def _segment(value: str) -> str:
    return quote(value, safe="")


class Client:
    """A session with one platform, authenticated by a bearer token or an API key.

    Not thread-safe to share across threads while streaming; cheap to create.
    Close it with ``close()`` or use it as a context manager.
    """

    MAX_PAGE = 500
    """The most items a list endpoint returns at once (its largest ``limit``)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``timeout`` (seconds) applies to each ordinary call; ``transfer_timeout``
        to uploads and downloads, per network operation."""
        self.url = url.rstrip("/")
        self._transfer_timeout = transfer_timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"mlops-client/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def login(
        cls, url: str, username: str, password: str, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Client:
        """Log in with a username and password (``POST /api/v1/auth/login``)."""
        base = url.rstrip("/")
        try:
            response = httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": username, "password": password},
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise ClientError(0, "connection_error", f"cannot reach {base}: {exc}") from exc
        if response.status_code != 200:
            raise ClientError.from_response(response)
        return cls(base, str(response.json()["access_token"]), timeout=timeout)

    @classmethod
    def from_login(cls, *, timeout: float = DEFAULT_TIMEOUT) -> Client:
        """Use the URL and token kept by ``mlops login`` (``MLOPS_CREDENTIALS_FILE``
        overrides where they are kept). Raises ``ClientError`` when there is no
        kept login or it has expired."""
        # Imported here: the CLI owns where credentials live, and library users
        # should not pay for importing the CLI unless they ask for its login.
        from mlops.credentials import load_credentials

        creds = load_credentials()
        if creds is None:
            raise ClientError(
                0, "not_logged_in", "not logged in; run `mlops login --url URL` first"
            )
        if float(creds.get("expires_at", 0)) <= time.time():
            raise ClientError(
                0, "login_expired", "the kept login has expired; run `mlops login --url URL` again"
            )
        return cls(str(creds["url"]), str(creds["access_token"]), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(0, "connection_error", f"cannot reach {self.url}: {exc}") from exc
        if response.is_error:
            raise ClientError.from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    # -- models -----------------------------------------------------------------

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Register a new, empty model. 409 if the name is taken."""
        return self._json(
            "POST",
            "/api/v1/models",
            json={"name": name, "description": description, "tags": dict(tags or {})},
        )

    def list_models(
        self, prefix: str | None = None, tag: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """One page of models: ``{"items", "total", "limit", "offset"}``.
        ``tag`` is ``"key"`` or ``"key:value"``."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if prefix is not None:
            params["prefix"] = prefix
        if tag is not None:
            params["tag"] = tag
        return self._json("GET", "/api/v1/models", params=params)

    def get_model(self, name: str) -> dict[str, Any]:
        """The model with its aliases; 404 if there is none of that name."""
        return self._json("GET", f"/api/v1/models/{_segment(name)}")

    # -- versions ---------------------------------------------------------------

    def push(
        self,
        path: str | os.PathLike[str],
        name: str,
        alias: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        create: bool = True,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Upload the model file at ``path`` as the next version of ``name``.

        The file is streamed from disk. ``metadata`` is the upload's JSON metadata
        (``description``, ``tags``, ``metrics``, ``params``, lineage fields). With
        ``create``, a model that does not exist yet is created first. With
        ``alias``, the alias is then pointed at the new version. ``progress`` is
        called as the file is read, ending with ``(size, size)``. Returns the
        version, as read after the alias moved.
        """
        file_path = Path(path)
        if create:
            self._ensure_model(name)
        data = {"metadata": json.dumps(dict(metadata))} if metadata else None
        with _ProgressFile(file_path, progress) as handle:
            version = self._json(
                "POST",
                f"/api/v1/models/{_segment(name)}/versions",
                files={"file": (file_path.name, handle, "application/octet-stream")},
                data=data,
                timeout=self._transfer_timeout,
            )
        if alias is None:
            return version
        self.set_alias(name, alias, int(version["version"]))
        return self.get_version(name, int(version["version"]))

    def _ensure_model(self, name: str) -> None:
        try:
            self.get_model(name)
        except ClientError as exc:
            if exc.status_code != 404:
                raise
            try:
                self.create_model(name)
            except ClientError as race:
                if race.status_code != 409:  # created meanwhile by someone else: fine
                    raise

    def list_versions(self, name: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """One page of versions, oldest first: ``{"items", "total", "limit", "offset"}``."""
        return self._json(
            "GET",
            f"/api/v1/models/{_segment(name)}/versions",
            params={"limit": limit, "offset": offset},
        )

    def get_version(self, name: str, version: int) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/models/{_segment(name)}/versions/{int(version)}")

    def download(
        self,
        name: str,
        version: int,
        dest_path: str | os.PathLike[str],
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream the version's file to ``dest_path`` and return that path.

        The bytes are written to a temporary sibling file and checked against the
        server's ``X-Artifact-SHA256``; only a verified file replaces ``dest_path``.
        On a mismatch (or any failure) the partial file is deleted and
        ``ClientError`` (code ``checksum_mismatch``) is raised.
        """
        dest = Path(dest_path)
        partial = dest.with_name(f".{dest.name}.part")
        url = f"/api/v1/models/{_segment(name)}/versions/{int(version)}/artifact"
        try:
            with self._http.stream("GET", url, timeout=self._transfer_timeout) as response:
                if response.is_error:
                    response.read()
                    raise ClientError.from_response(response)
                expected = response.headers.get("X-Artifact-SHA256", "").lower()
                total = int(response.headers.get("Content-Length") or 0)
                digest = hashlib.sha256()
                try:
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            if progress is not None:
                                progress(response.num_bytes_downloaded, total)
                    actual = digest.hexdigest()
                    if actual != expected:
                        raise ClientError(
                            0,
                            "checksum_mismatch",
                            f"downloaded {name} v{version} has sha256 {actual}, but the "
                            f"server said {expected or 'nothing'}; the file was deleted",
                        )
                    os.replace(partial, dest)
                finally:
                    partial.unlink(missing_ok=True)
        except httpx.TransportError as exc:
            raise ClientError(0, "connection_error", f"cannot reach {self.url}: {exc}") from exc
        return dest

    # -- aliases ----------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point ``alias`` at ``version``: ``{"model", "alias", "version", "previous_version"}``."""
        return self._json(
            "PUT",
            f"/api/v1/models/{_segment(name)}/aliases/{_segment(alias)}",
            json={"version": int(version)},
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", f"/api/v1/models/{_segment(name)}/aliases/{_segment(alias)}")

    def alias_history(
        self, name: str, alias: str, *, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """One page of moves, oldest first: ``{"model", "alias", "current_version",
        "events": [...], "total", "limit", "offset"}``."""
        return self._json(
            "GET",
            f"/api/v1/models/{_segment(name)}/aliases/{_segment(alias)}/history",
            params={"limit": limit, "offset": offset},
        )

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Move ``alias`` back to where it pointed before its last move (409
        ``nothing_to_roll_back`` if it never moved): same answer as ``set_alias``."""
        return self._json(
            "POST", f"/api/v1/models/{_segment(name)}/aliases/{_segment(alias)}/rollback"
        )

    # -- deployment policies ---------------------------------------------------

    def get_deployment(self, name: str) -> dict[str, Any]:
        """``{"model", "policy", "primary_version", "status", "updated_by", "updated_at"}``."""
        return self._json("GET", f"/api/v1/models/{_segment(name)}/deployment")

    def set_deployment(self, name: str, policy: Mapping[str, Any]) -> dict[str, Any]:
        """Editors: replace the policy (``alias``, ``canary``, ``shadow``, ``guard``);
        every model server applies it within seconds. Same answer as ``get_deployment``."""
        return self._json("PUT", f"/api/v1/models/{_segment(name)}/deployment", json=dict(policy))

    # -- default model and predictions -----------------------------------------

    def set_default_model(self, name: str) -> dict[str, Any]:
        """Admins: the model ``predict()`` without a name serves. ``{"name", "source"}``."""
        return self._json("PUT", "/api/v1/settings/default-model", json={"name": name})

    def get_default_model(self) -> dict[str, Any]:
        """``{"name", "source"}``; ``name`` is ``None`` when no default is set."""
        return self._json("GET", "/api/v1/settings/default-model")

    def predict(
        self,
        data: Any,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        return_probabilities: bool = False,
    ) -> dict[str, Any]:
        """Predict with ``name`` (or the default model when ``None``).

        ``data`` is a list of rows (anything JSON-serialisable). ``version`` or
        ``alias`` choose what to run (the server's default is the ``production``
        alias); they are sent as query parameters and need ``name``.
        """
        if name is None and (version is not None or alias is not None):
            raise ValueError("version and alias need a model name")
        if version is not None and alias is not None:
            raise ValueError("give either version or alias, not both")
        path = (
            "/api/v1/models/predict" if name is None else f"/api/v1/models/{_segment(name)}/predict"
        )
        params: dict[str, str | int] = {}
        if version is not None:
            params["version"] = int(version)
        if alias is not None:
            params["alias"] = alias
        body: dict[str, Any] = {"data": data}
        if return_probabilities:
            body["return_probabilities"] = True
        return self._json("POST", path, json=body, params=params)

    # -- batch jobs and data sets ----------------------------------------------

    def upload_dataset(
        self, path: str | os.PathLike[str], progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Upload a CSV, Parquet or JSONL file (by its extension) to platform storage,
        streamed from disk: ``{"uri", "filename", "format", "size", "sha256"}``. Give
        ``uri`` as a job's input."""
        file_path = Path(path)
        with _ProgressFile(file_path, progress) as handle:
            return self._json(
                "POST",
                "/api/v1/datasets",
                files={"file": (file_path.name, handle, "application/octet-stream")},
                timeout=self._transfer_timeout,
            )

    def submit_job(
        self,
        model: str,
        input: str,
        *,
        alias: str | None = None,
        version: int | None = None,
        output: str | None = None,
        format: str | None = None,
        return_probabilities: bool = False,
        shard_rows: int | None = None,
    ) -> dict[str, Any]:
        """Queue a ``batch_predict`` job (editors): score ``input`` (a platform path such
        as an uploaded data set's ``uri``, or ``s3://``) with ``model`` at ``version``,
        or the version ``alias`` (default ``production``) names now. Returns the job."""
        options: dict[str, Any] = {"return_probabilities": return_probabilities}
        if shard_rows is not None:
            options["shard_rows"] = int(shard_rows)
        body: dict[str, Any] = {"type": "batch_predict", "model": model, "input": input}
        for key, value in (("alias", alias), ("version", version), ("output", output)):
            if value is not None:
                body[key] = value
        if format is not None:
            body["format"] = format
        body["options"] = options
        return self._json("POST", "/api/v1/jobs", json=body)

    def list_jobs(
        self,
        status: str | None = None,
        model: str | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of jobs, newest first: ``{"items", "total", "limit", "offset"}``."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        if model is not None:
            params["model"] = model
        return self._json("GET", "/api/v1/jobs", params=params)

    def get_job(self, job_id: int) -> dict[str, Any]:
        """The job: ``status``, ``rows_done``/``rows_total``, ``shards_done``/``shards_total``,
        ``attempts``, timings, and ``error`` when it failed."""
        return self._json("GET", f"/api/v1/jobs/{int(job_id)}")

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        """Stop a queued or running job (editors): no further shard starts."""
        return self._json("POST", f"/api/v1/jobs/{int(job_id)}/cancel")

    def wait_for_job(
        self,
        job_id: int,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is ``succeeded``, ``failed`` or ``cancelled``; return it.
        ``on_update`` sees each poll's job. Raises ``ClientError`` (``timeout``) after
        ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ClientError(0, "timeout", f"job {job_id} is still {job['status']}")
            time.sleep(poll)

    def download_job_output(
        self,
        job_id: int,
        dest_path: str | os.PathLike[str],
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream a succeeded job's output (in platform storage) to ``dest_path``,
        through a temporary sibling file that replaces it only when complete."""
        dest = Path(dest_path)
        partial = dest.with_name(f".{dest.name}.part")
        try:
            with self._http.stream(
                "GET", f"/api/v1/jobs/{int(job_id)}/output", timeout=self._transfer_timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise ClientError.from_response(response)
                total = int(response.headers.get("Content-Length") or 0)
                try:
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            out.write(chunk)
                            if progress is not None:
                                progress(response.num_bytes_downloaded, total)
                    os.replace(partial, dest)
                finally:
                    partial.unlink(missing_ok=True)
        except httpx.TransportError as exc:
            raise ClientError(0, "connection_error", f"cannot reach {self.url}: {exc}") from exc
        return dest

    # -- drift monitoring --------------------------------------------------------

    def set_reference(
        self, name: str, version: int, uri: str | None = None, path: str | None = None
    ) -> dict[str, Any]:
        """Give a version its reference data set for drift monitoring (editors): the
        ``uri`` of a data set (``datasets/...`` or ``s3://``), or a local file at
        ``path``, uploaded. Returns ``{"model", "version", "uri", "format", ...}``."""
        if (uri is None) == (path is None):
            raise ValueError("give uri or path")
        url = f"/api/v1/models/{_segment(name)}/versions/{int(version)}/reference"
        if uri is not None:
            return self._json("PUT", url, json={"uri": uri})
        file_path = Path(str(path))
        with file_path.open("rb") as handle:
            return self._json(
                "PUT",
                url,
                files={"file": (file_path.name, handle, "application/octet-stream")},
                timeout=self._transfer_timeout,
            )

    def run_drift(self, name: str) -> dict[str, Any]:
        """Queue a drift report of the model's monitored versions now; returns the job."""
        return self._json("POST", f"/api/v1/models/{_segment(name)}/drift/run")

    def get_drift(self, name: str, version: int | None = None) -> dict[str, Any]:
        """``{"model", "versions": [{"version", "reference", "latest"}], "history": [...],
        "total", "limit", "offset"}``: each report has per-feature ``psi`` (and ``ks``),
        ``prediction_psi`` and a ``status`` (``ok``, ``drift``, ``insufficient_data``)."""
        params = {} if version is None else {"version": int(version)}
        return self._json("GET", f"/api/v1/models/{_segment(name)}/drift", params=params)
