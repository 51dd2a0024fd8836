"""Building the API server's and the model server's app imports neither boto3 nor pyarrow.

The workers' modules are imported by the app (the job and drift routes, the worker
``mlops up`` runs); they import boto3 (~0.6 s) and pyarrow only where an ``s3://``
location or a job's data is touched. (A serving process that samples traffic for drift
imports pyarrow in its start-up, before it reports ready: see serving/sampling.py.)
Checked in a fresh interpreter by the modules loaded, not by a timing.
"""

from __future__ import annotations

from tests.imports_probe import run_probe

LAZY = {"boto3", "botocore", "pyarrow"}


def test_importing_the_app_imports_neither_boto3_nor_pyarrow() -> None:
    loaded, _ = run_probe("import mlops.api.app")
    assert "mlops" in loaded and "fastapi" in loaded  # the probe did import the app
    assert not loaded & LAZY, sorted(loaded & LAZY)


def test_building_every_component_imports_neither() -> None:
    # The app with the workers component (mlops up) builds its routes and metrics.
    loaded, _ = run_probe(
        """
        from mlops.api.app import create_app
        from mlops.config import load_settings
        create_app(
            load_settings(secret_key="k" * 64),
            components={"api", "serving", "workers", "web"},
        )
        """
    )
    assert not loaded & LAZY, sorted(loaded & LAZY)


def test_the_worker_steps_do_import_pyarrow() -> None:
    # The probe can fail: the steps, imported on a worker's first task, need pyarrow.
    loaded, _ = run_probe("from mlops.workers.loop import default_steps\ndefault_steps()")
    assert "pyarrow" in loaded


def test_an_s3_location_imports_boto3_when_used() -> None:
    loaded, _ = run_probe(
        """
        from mlops.config import load_settings
        from mlops.storage import LocalArtifactStore
        from mlops.workers.objects import ObjectAccess
        import tempfile, pathlib
        store = LocalArtifactStore(pathlib.Path(tempfile.mkdtemp()))
        ObjectAccess(store, load_settings(secret_key="k" * 64))._client()
        """
    )
    assert {"boto3", "botocore"} <= loaded
