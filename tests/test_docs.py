"""The documentation stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from mlops.config import Settings, read_yaml_config

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`MLOPS_{name.upper()}`" in readme, name


def test_readme_quickstart_has_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quickstart, re.S)
    assert len(blocks) == 2
    assert all(len(block.strip().splitlines()) == 1 for block in blocks)
    assert "mlops up" in blocks[0]
    assert blocks[1].strip() in (ROOT / ".ci" / "run").read_text()


def test_yaml_template_covers_every_setting_but_secrets() -> None:
    template = ROOT / "infrastructure/production/config/application.yml.template"
    documented = set(read_yaml_config(template))
    # Secrets and URLs that hold passwords come from a Kubernetes Secret, not this file.
    from_secrets = {
        "secret_key",
        "secret_key_previous",
        "admin_password",
        "database_url",
        "redis_url",
        "metrics_token",
    }
    assert documented | from_secrets == set(Settings.model_fields)


def test_threat_model_names_only_tests_that_exist() -> None:
    """Each test the threat model cites exists, so a renamed or deleted test shows here."""
    text = (ROOT / "docs" / "security.md").read_text()
    model = text.split("## Threat model", 1)[1]
    cited = re.findall(r"`((?:tests/[\w/]+/)?test_\w+\.py)(?:::(\w+))?`|`::(\w+)`", model)
    assert cited, "the threat model cites no test"
    current: Path | None = None
    for path, name, continued in cited:
        if path:
            found = [ROOT / path] if "/" in path else list((ROOT / "tests").rglob(path))
            assert len(found) == 1 and found[0].exists(), path
            current = found[0]
        test_name = name or continued
        if test_name:
            assert current is not None
            assert f"def {test_name}(" in current.read_text(), f"{current.name}::{test_name}"
