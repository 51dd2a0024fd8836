"""The schema check reads revisions without Alembic; it must agree with Alembic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from mlops.config import load_settings, sync_database_url
from mlops.db import schema
from mlops.db.session import create_engine as create_async_engine
from tests.imports_probe import run_probe

SECRET_KEY = "k" * 64


def test_the_head_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(schema.alembic_config("sqlite://"))
    assert schema.head_revision() == script.get_current_head()


def test_the_current_revision_is_alembics_before_and_after_an_upgrade(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, secret_key=SECRET_KEY)
    sync_url = sync_database_url(settings.resolved_database_url)

    def alembic_current() -> str | None:
        engine = create_engine(sync_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()

    async def ours() -> tuple[str | None, tuple[bool, str]]:
        engine = create_async_engine(settings)
        try:
            return await schema.current_revision(engine), await schema.schema_status(engine)
        finally:
            await engine.dispose()

    before, (ok, detail) = asyncio.run(ours())
    assert before is None and not ok and "mlops db upgrade" in detail
    schema.upgrade_database(settings)
    after, (ok, detail) = asyncio.run(ours())
    assert after == alembic_current() == schema.head_revision()
    assert ok, detail


def test_two_heads_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "a.py").write_text("revision: str = 'a'\ndown_revision = None\n")
    (versions / "b.py").write_text("revision = 'b'\ndown_revision: str | None = 'a'\n")
    (versions / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", tmp_path)
    schema.head_revision.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"one head, found \['b', 'c'\]"):
            schema.head_revision()
    finally:
        schema.head_revision.cache_clear()


def test_checking_the_schema_does_not_import_alembic(tmp_path: Path) -> None:
    loaded, report = run_probe(
        f"""
        import asyncio
        from mlops.config import load_settings
        from mlops.db.schema import schema_status
        from mlops.db.session import create_engine
        settings = load_settings(data_dir={str(tmp_path)!r}, secret_key={SECRET_KEY!r})

        async def check():
            engine = create_engine(settings)
            try:
                return await schema_status(engine)
            finally:
                await engine.dispose()

        _exit = list(asyncio.run(check()))
        """
    )
    assert report["exit"] == [
        False,
        f"schema is at empty, code expects {schema.head_revision()}: {schema.UPGRADE_HINT}",
    ]
    assert "alembic" not in loaded and "mako" not in loaded
