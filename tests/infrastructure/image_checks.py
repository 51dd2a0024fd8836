"""Run inside the image by tests/infrastructure/test_image.py (python3 /checks.py): what
the Containerfile prunes and strips must leave every library the platform uses
working, not just importable. Prints one line per check; any failure raises."""

from __future__ import annotations

import ctypes
import sys
import tempfile
from pathlib import Path


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
        the_model_libraries_train_convert_and_predict,
        pyarrow_reads_and_writes_every_format_the_jobs_use,
        s3_clients_and_the_docs_assets_are_there,
    ):
        print(f"ok: {check()}")
