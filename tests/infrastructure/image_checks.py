"""Run inside the image by tests/infrastructure/test_image.py (python3 /checks.py): what
the Containerfile prunes and strips must leave every library the platform uses
working, not just importable. Prints one line per check; any failure raises."""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

# What the Containerfile prunes from, and what imports from those: every module of them
# must still import, so a pruned part that one of them uses is found here.
PRUNED_FROM = (
    "numpy",
    "scipy",
    "sklearn",
    "lightgbm",
    "xgboost",
    "skops",
    "skl2onnx",
    "onnxmltools",
    "onnx",
    "onnxruntime",
    "pyarrow",
    "sqlalchemy",
    "alembic",
    "mlops",
)
# Test, build and example helpers: never imported by a library at run time, and pruned
# (or importing pytest, Cython, matplotlib) on purpose.
NOT_RUN_TIME = {
    "tests",
    "testing",
    "conftest",
    "_testutils",
    "_mptestutils",
    "_precompute",
    "_build_utils",
    "_examples",
    "_pyinstaller",
    "templates",
    "__main__",
}
# Modules that cannot import in any environment like the image's, each with its reason.
CANNOT_IMPORT = {
    # f2py's backend for numpy.distutils (pruned: a build tool, gone in Python 3.12).
    "numpy.f2py._backends._distutils",
    # Needs ONNX's backend test data (pruned with the other tests); a docs generator.
    "onnx.defs.gen_doc",
    # pyarrow's CUDA binding: the PyPI wheel is built without it.
    "pyarrow.cuda",
    # Broken in onnxmltools 1.16 itself (imports a cast_list its utils no longer have).
    "onnxmltools.convert.libsvm",
    # Alembic's migration environment: run by Alembic, which provides alembic.context.
    "mlops.db.migrations.env",
}


def every_shared_object_loads() -> str:
    """The loader accepts each library and extension module (a bad strip would not)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    failed, count = [], 0
    for path in sorted(site.rglob("*.so*")):
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            count += 1
            try:
                ctypes.CDLL(str(path))
            except OSError as exc:
                failed.append(str(exc))
    assert count > 200 and not failed, failed
    return f"{count} shared objects load"


def _module_names(site: Path, top: str) -> list[str]:
    names = []
    for path in sorted((site / top).rglob("*.py")):
        parts = list(path.relative_to(site).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not NOT_RUN_TIME.intersection(parts) and not any(
            name == skip or name.startswith(skip + ".") for skip in CANNOT_IMPORT
        ):
            names.append(name)
    return names


def _needs_an_absent_package(exc: BaseException | None) -> bool:
    """The import failed, perhaps re-raised with a friendlier message (xgboost.spark),
    because a top-level package the image does not install is missing."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return importlib.util.find_spec(exc.name.partition(".")[0]) is None
        exc = exc.__cause__ or exc.__context__
    return False


def every_module_of_the_pruned_libraries_imports() -> str:
    """Each module imports, or needs a package the image does not have (Spark, CuPy, ...).

    A module that fails for anything else (a pruned subpackage, a missing library) is a
    failure: a user's model could need it.
    """
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    failed, count = [], 0
    warnings.simplefilter("ignore")  # deprecation notices of modules imported on purpose
    for top in PRUNED_FROM:
        for name in _module_names(site, top):
            count += 1
            try:
                importlib.import_module(name)
            except Exception as exc:
                if not _needs_an_absent_package(exc):
                    failed.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failed, "\n".join(failed)
    assert count > 1500, f"only {count} modules: is the walk looking in the right place?"
    return f"{count} modules of the pruned libraries import"


def the_model_libraries_train_convert_and_predict() -> str:
    import lightgbm
    import numpy as np
    import onnxruntime
    import scipy.linalg
    import skops.io
    import xgboost
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    square = rng.random((40, 40)) + 40 * np.eye(40)
    assert np.allclose(scipy.linalg.inv(square) @ square, np.eye(40), atol=1e-8)  # OpenBLAS
    x = rng.random((200, 5))
    y = (x[:, 0] > 0.5).astype(int)
    model = LogisticRegression().fit(x, y)
    blob = skops.io.dumps(model)
    again = skops.io.loads(blob, trusted=skops.io.get_untrusted_types(data=blob))
    assert (again.predict(x) == model.predict(x)).all()
    xgboost.XGBClassifier(n_estimators=3).fit(x, y).predict(x)
    lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y).predict(x)
    graph = to_onnx(model, x[:1].astype(np.float32))
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    assert (labels == model.predict(x)).all()
    # The image opts out of onnxruntime's telemetry: no session file, no device id.
    leftovers = [*Path(tempfile.gettempdir()).glob(".ses"), *Path.home().glob(".cache/Microsoft")]
    assert not leftovers, leftovers
    return "scikit-learn, skops, XGBoost, LightGBM, ONNX Runtime work"


def pyarrow_reads_and_writes_every_format_the_jobs_use() -> str:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.dataset as ds
    import pyarrow.fs
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    folder = Path(tempfile.mkdtemp())
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    pq.write_table(table, folder / "t.parquet")
    assert pq.read_table(folder / "t.parquet").equals(table)
    pcsv.write_csv(table, folder / "t.csv")
    assert pcsv.read_csv(folder / "t.csv").equals(table)
    (folder / "t.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    assert pjson.read_json(folder / "t.jsonl").num_rows == 2
    assert ds.dataset(folder / "t.parquet").to_table().num_rows == 3
    assert pc.sum(table["a"]).as_py() == 6
    info = pyarrow.fs.LocalFileSystem().get_file_info(str(folder))
    assert info.type == pyarrow.fs.FileType.Directory
    return "pyarrow parquet, csv, json, dataset, compute, fs work"


def psycopg_runs_on_the_system_libpq() -> str:
    """The C implementation, built against Debian's libpq; psycopg-binary is absent."""
    import psycopg

    assert psycopg.pq.__impl__ == "c", psycopg.pq.__impl__
    assert importlib.util.find_spec("psycopg_binary") is None
    return f"psycopg {psycopg.__version__} (C) on libpq {psycopg.pq.version()}"


def s3_clients_and_the_docs_assets_are_there() -> str:
    import boto3.session

    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="id", aws_secret_access_key="secret"
    )
    session.client("s3", endpoint_url="http://127.0.0.1:9")
    for service in ("sts", "sso", "sso-oidc"):  # the credential providers' services
        session.client(service)
    from mlops.api.docs import ASSETS

    assert all(path.is_file() for path, _ in ASSETS.values()), ASSETS
    return "S3 and credential clients, /docs assets"


if __name__ == "__main__":
    for check in (
        every_shared_object_loads,
        every_module_of_the_pruned_libraries_imports,
        the_model_libraries_train_convert_and_predict,
        pyarrow_reads_and_writes_every_format_the_jobs_use,
        psycopg_runs_on_the_system_libpq,
        s3_clients_and_the_docs_assets_are_there,
    ):
        print(f"ok: {check()}")
