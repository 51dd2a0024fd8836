"""One behavioural suite for every ArtifactStore backend, against real storage."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlops.errors import NotFound, PlatformError
from mlops.storage import (
    ArtifactStore,
    LocalArtifactStore,
    ObjectNotFound,
    S3ArtifactStore,
    StorageError,
    StoredObject,
    create_store,
)

if TYPE_CHECKING:
    from tests.seaweed import SeaweedFS
    from tests.storage.conftest import S3StoreFactory

pytestmark = pytest.mark.anyio

MiB = 1 << 20


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def read_stream(store: ArtifactStore, key: str, chunk_size: int) -> bytes:
    chunks = [chunk async for chunk in store.open_stream(key, chunk_size=chunk_size)]
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    return b"".join(chunks)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- behaviour shared by all backends -------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB + 7])
async def test_round_trip(store: ArtifactStore, tmp_path: Path, size: int) -> None:
    data = write_random(tmp_path / "model.bin", size)
    key = "models/1/versions/2/model.bin"

    stored = await store.put_file(key, tmp_path / "model.bin")

    assert stored == StoredObject(key=key, size=size, sha256=sha256(data))
    assert await store.exists(key)
    assert await store.size(key) == size
    await store.get_file(key, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert await read_stream(store, key, chunk_size=64 * 1024) == data
    assert leftovers(tmp_path) == ["copy.bin", "model.bin"]  # no temp files left behind


async def test_large_file(store: ArtifactStore, tmp_path: Path) -> None:
    # 20 MiB is above the 8 MiB multipart threshold: three parts on S3.
    data = write_random(tmp_path / "big.bin", 20 * MiB)

    stored = await store.put_file("big/model.onnx", tmp_path / "big.bin")

    assert (stored.size, stored.sha256) == (20 * MiB, sha256(data))
    await store.get_file("big/model.onnx", tmp_path / "copy.bin")
    assert sha256((tmp_path / "copy.bin").read_bytes()) == stored.sha256
    streamed = hashlib.sha256()
    async for chunk in store.open_stream("big/model.onnx"):
        assert len(chunk) <= MiB
        streamed.update(chunk)
    assert streamed.hexdigest() == stored.sha256


async def test_put_replaces_existing_object(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "v1").write_bytes(b"first version")
    (tmp_path / "v2").write_bytes(b"second")
    await store.put_file("a/model", tmp_path / "v1")

    stored = await store.put_file("a/model", tmp_path / "v2")

    assert stored.size == 6
    assert await store.size("a/model") == 6
    assert await read_stream(store, "a/model", chunk_size=4) == b"second"
    assert await store.list_keys() == ["a/model"]


async def test_get_file_replaces_destination(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "dest").write_bytes(b"old and longer")
    await store.put_file("k", tmp_path / "src")

    await store.get_file("k", tmp_path / "dest")

    assert (tmp_path / "dest").read_bytes() == b"new"


async def test_delete_is_idempotent(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    await store.put_file("models/1/f", tmp_path / "f")

    await store.delete("models/1/f")
    await store.delete("models/1/f")
    await store.delete("never/stored")

    assert not await store.exists("models/1/f")
    assert await store.size("models/1/f") is None
    assert await store.list_keys() == []


async def test_missing_key(store: ArtifactStore, tmp_path: Path) -> None:
    dest = tmp_path / "dest.bin"

    with pytest.raises(ObjectNotFound) as excinfo:
        await store.get_file("models/404/model.bin", dest)
    with pytest.raises(ObjectNotFound):
        async for _ in store.open_stream("models/404/model.bin"):
            pass

    assert isinstance(excinfo.value, NotFound) and excinfo.value.status_code == 404
    assert excinfo.value.key == "models/404/model.bin"
    assert leftovers(tmp_path) == []  # no partial destination file
    assert await store.size("models/404/model.bin") is None
    assert not await store.exists("models/404/model.bin")


async def test_a_directory_is_not_an_object(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    await store.put_file("models/1/f", tmp_path / "f")

    assert not await store.exists("models/1")
    assert await store.size("models") is None
    with pytest.raises(ObjectNotFound):
        await store.get_file("models/1", tmp_path / "dest")


async def test_list_keys_by_prefix(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    keys = ["models/1/a.onnx", "models/1/b.bin", "models/12/c", "other/x", "top"]
    for key in keys:
        await store.put_file(key, tmp_path / "f")

    assert await store.list_keys() == sorted(keys)
    assert await store.list_keys("models/1/") == ["models/1/a.onnx", "models/1/b.bin"]
    assert await store.list_keys("models/1") == ["models/1/a.onnx", "models/1/b.bin", "models/12/c"]
    assert await store.list_keys("models/1/a") == ["models/1/a.onnx"]
    assert await store.list_keys("t") == ["top"]
    assert await store.list_keys("nothing/") == []


async def test_stream_can_stop_early(store: ArtifactStore, tmp_path: Path) -> None:
    write_random(tmp_path / "f", 3 * MiB)
    await store.put_file("k", tmp_path / "f")

    async for chunk in store.open_stream("k", chunk_size=MiB):
        assert len(chunk) == MiB
        break

    # The store is still usable (no leaked connection or lock).
    assert await store.size("k") == 3 * MiB


async def test_missing_source_file_stores_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file("k", tmp_path / "does-not-exist")

    assert await store.list_keys() == []


async def test_check_passes(store: ArtifactStore) -> None:
    await store.check()


BAD_KEYS = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a/..",
    "..",
    ".",
    "a/./b",
    "",
    "a//b",
    "a/",
    ".hidden",
    "a/.tmp-x",
    "A/b",
    "a\\b",
    "a b",
    "a\x00b",
    "a\nb",
    "x" * 257,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_rejected(store: ArtifactStore, tmp_path: Path, key: str) -> None:
    (tmp_path / "f").write_bytes(b"x")

    with pytest.raises(ValueError):
        await store.put_file(key, tmp_path / "f")
    with pytest.raises(ValueError):
        await store.get_file(key, tmp_path / "dest")
    with pytest.raises(ValueError):
        store.open_stream(key)  # raised on the call, before any iteration
    with pytest.raises(ValueError):
        await store.delete(key)
    with pytest.raises(ValueError):
        await store.exists(key)
    with pytest.raises(ValueError):
        await store.size(key)

    assert await store.list_keys() == []
    assert leftovers(tmp_path) == ["f"]


@pytest.mark.parametrize("prefix", ["../", "/etc", "a/../", "A", "a//"])
async def test_invalid_prefixes_are_rejected(store: ArtifactStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        await store.list_keys(prefix)


async def test_invalid_chunk_size(store: ArtifactStore) -> None:
    with pytest.raises(ValueError):
        store.open_stream("k", chunk_size=0)


# --- local backend --------------------------------------------------------------------


async def test_local_permissions(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"secret weights")
    store = LocalArtifactStore(tmp_path / "root")

    await store.put_file("models/1/f", tmp_path / "f")

    assert stat.S_IMODE((tmp_path / "root").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "root/models").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "root/models/1").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "root/models/1/f").stat().st_mode) == 0o600
    assert store.url == (tmp_path / "root").resolve().as_uri()


async def test_local_symlink_cannot_escape_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"root:x:0:0")
    (tmp_path / "f").write_bytes(b"x")
    store = LocalArtifactStore(tmp_path / "root")
    (tmp_path / "root/link").symlink_to(outside)

    with pytest.raises(ValueError):
        await store.put_file("link/new", tmp_path / "f")
    with pytest.raises(ValueError):
        await store.get_file("link/passwd", tmp_path / "dest")
    with pytest.raises(ValueError):
        await store.delete("link/passwd")

    assert leftovers(outside) == ["passwd"]
    assert await store.list_keys() == []


async def test_local_key_conflicting_with_directory(tmp_path: Path) -> None:
    # On a filesystem "a" cannot be both an object and the parent of "a/b".
    (tmp_path / "f").write_bytes(b"x")
    store = LocalArtifactStore(tmp_path / "root")
    await store.put_file("a/b", tmp_path / "f")

    with pytest.raises(StorageError):
        await store.put_file("a", tmp_path / "f")

    assert await store.list_keys() == ["a/b"]


async def test_local_check_fails_without_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    (tmp_path / "root").rmdir()

    with pytest.raises(StorageError) as excinfo:
        await store.check()

    assert isinstance(excinfo.value, PlatformError)
    assert (excinfo.value.status_code, excinfo.value.code) == (503, "storage_error")


# --- S3 backend -----------------------------------------------------------------------


async def test_s3_object_layout(
    seaweedfs_server: SeaweedFS, make_s3_store: S3StoreFactory, s3_bucket: str, tmp_path: Path
) -> None:
    data = write_random(tmp_path / "big.bin", 20 * MiB)
    async with make_s3_store(s3_bucket, "layout/pfx") as store:
        await store.put_file("models/1/big.bin", tmp_path / "big.bin")
        assert store.url == f"s3://{s3_bucket}/layout/pfx"
        assert await store.list_keys() == ["models/1/big.bin"]

    head = seaweedfs_server.client().head_object(
        Bucket=s3_bucket, Key="layout/pfx/models/1/big.bin"
    )
    assert head["Metadata"] == {"sha256": sha256(data)}
    assert head["ETag"].strip('"').endswith("-3")  # uploaded as 3 parts of 8 MiB


async def test_s3_check_fails_for_missing_bucket(
    make_s3_store: S3StoreFactory, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    async with make_s3_store("no-such-bucket-here", "") as store:
        with pytest.raises(StorageError, match="does not exist"):
            await store.check()
        # The server must not create the bucket on write (real S3 does not).
        with pytest.raises(StorageError):
            await store.put_file("k", tmp_path / "f")


async def test_s3_check_fails_for_wrong_credentials(
    seaweedfs_server: SeaweedFS, s3_bucket: str
) -> None:
    store = S3ArtifactStore(
        s3_bucket,
        endpoint_url=seaweedfs_server.endpoint_url,
        region=seaweedfs_server.region,
        access_key=seaweedfs_server.access_key,
        secret_key="wrong-secret",
    )
    async with store:
        with pytest.raises(StorageError):
            await store.check()


async def test_s3_check_fails_when_unreachable(s3_bucket: str) -> None:
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused.
    store = S3ArtifactStore(
        s3_bucket,
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        access_key="x",
        secret_key="y",
        max_attempts=1,
    )
    async with store:
        with pytest.raises(StorageError, match="EndpointConnectionError"):
            await store.check()


# --- factory --------------------------------------------------------------------------


def test_factory_file_absolute(tmp_path: Path) -> None:
    store = create_store((tmp_path / "abs").as_uri())

    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "abs").resolve()
    assert (tmp_path / "abs").is_dir()


def test_factory_file_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = create_store("file://var/artifacts")

    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "var/artifacts").resolve()


@pytest.mark.parametrize(
    ("url", "prefix_url"),
    [
        ("s3://my-bucket", "s3://my-bucket"),
        ("s3://my-bucket/", "s3://my-bucket"),
        ("s3://my-bucket/prod/artifacts/", "s3://my-bucket/prod/artifacts"),
    ],
)
def test_factory_s3(url: str, prefix_url: str) -> None:
    store = create_store(url, s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1")

    assert isinstance(store, S3ArtifactStore)
    assert store.bucket == "my-bucket"
    assert store.url == prefix_url


async def test_factory_s3_uses_aws_environment(
    seaweedfs_server: SeaweedFS, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in seaweedfs_server.aws_env().items():
        monkeypatch.setenv(name, value)
    (tmp_path / "f").write_bytes(b"via env")

    async with create_store(
        f"s3://{s3_bucket}/factory", s3_endpoint_url=seaweedfs_server.endpoint_url
    ) as store:
        await store.check()
        await store.put_file("k", tmp_path / "f")
        assert await store.list_keys() == ["k"]
        await store.delete("k")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/var/lib/artifacts",
        "relative/path",
        "file://",
        "http://example.com/bucket",
        "gs://bucket/x",
        "s3://",
        "s3:///prefix",
        "s3://Bad_Bucket/x",
        "s3://ab",
        "s3://user:hunter2@bucket/x",
        "s3://bucket:9000/x",
        "s3://bucket/UPPER/case",
        "s3://bucket/a/../b",
        "s3://bucket/x?versioning=1",
        "file:///tmp/x#frag",
    ],
)
def test_factory_rejects_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="MLOPS_ARTIFACT_STORE") as excinfo:
        create_store(url)

    message = str(excinfo.value)
    assert "file:///" in message and "s3://bucket" in message
    assert "hunter2" not in message
