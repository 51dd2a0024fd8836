"""A .skops zip bomb uploaded through the API: a 422 naming the member and the
limit, and nothing left behind (no row, no stored object, no temp file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from mlops.modelformats.skops_archive import MIN_UNPACKED_BUDGET
from tests.conftest import Platform
from tests.modelformats.skops_bombs import first_array, npy_header, replace_member
from tests.registry.helpers import create_model, row_counts, stored_keys, upload

BOMB_BYTES = 2 * MIN_UNPACKED_BUDGET


async def test_skops_zip_bomb_upload_is_refused_and_leaves_nothing(
    platform: Platform, admin_token: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    model = tmp_path / "model.skops"
    sio.dump(LogisticRegression().fit(x, x[:, 0] > 0), model)
    bomb = tmp_path / "bomb.skops"
    member = first_array(model)
    replace_member(model, bomb, member, npy_header((BOMB_BYTES // 8,)), BOMB_BYTES)

    await create_model(platform, admin_token, "clf")
    before = await row_counts(platform), await stored_keys(platform)
    response = await upload(platform, admin_token, "clf", bomb)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "model_too_large"
    assert member in error["message"]
    assert str(MIN_UNPACKED_BUDGET) in error["message"]
    assert (await row_counts(platform), await stored_keys(platform)) == before
    assert list((platform.settings.data_dir / "tmp").glob("*")) == []
