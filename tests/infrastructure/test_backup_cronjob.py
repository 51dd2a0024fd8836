"""The bundle's backup CronJob: `mlops backup create` to S3 every day with the platform
image, its credentials through secretKeyRef, hardened like the platform's pods, and
watched by the MLOpsBackupMissed alert (the platform's record, or kube-state-metrics
for a CronJob whose name contains "backup")."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.infrastructure.bundle import PRODUCTION, Doc, find, of_kind, pod_template, rendered

BACKUP = "mlops-backup"


def _cronjob() -> Doc:
    (cronjob,) = of_kind(rendered(), "CronJob")
    assert cronjob["metadata"]["name"] == BACKUP
    return cronjob


def _commands(container: Doc) -> list[list[str]]:
    """Each line of the container's shell script, split as the shell splits it."""
    command = container["command"]
    assert command[:2] == ["sh", "-c"], command
    return [shlex.split(line) for line in command[2].splitlines() if line.strip()]


def test_it_runs_mlops_backup_create_to_s3_daily_with_the_platform_image() -> None:
    cronjob = _cronjob()
    minute, hour, day, month, weekday = cronjob["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_template(cronjob)["spec"]["containers"]
    api = pod_template(find(rendered(), "Deployment", "api-server"))["spec"]["containers"][0]
    assert container["image"] == api["image"]
    backup = [c for c in _commands(container) if c[:1] == ["mlops"]]
    assert len(backup) == 1, container["command"]
    assert backup[0][:3] == ["mlops", "backup", "create"]
    assert re.fullmatch(r"s3://[a-z0-9.-]+/[\w./-]+", backup[0][3]), backup[0]
    assert backup[0][4:] == ["--config", "/etc/mlops/application.yml"]
    # The Job completes only when the Istio sidecar stops, whatever the backup's result.
    assert "quitquitquit" in container["command"][2]
    assert container["command"][2].rstrip().endswith("exit $rc")


def test_its_secrets_come_from_secret_key_refs_only() -> None:
    (container,) = pod_template(_cronjob())["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    refs = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "valueFrom" in e
    }
    assert refs["MLOPS_DATABASE_URL"] == ("mlops-database-credentials", "url")
    assert refs["MLOPS_SECRET_KEY"] == ("mlops-app-secrets", "secret-key")  # signs the manifest
    assert refs["AWS_ACCESS_KEY_ID"] == ("mlops-backup-s3-credentials", "access-key-id")
    assert refs["AWS_SECRET_ACCESS_KEY"] == ("mlops-backup-s3-credentials", "secret-access-key")
    literal = {name for name, e in env.items() if "value" in e}
    assert literal <= {"TMPDIR"}, literal
    assert "MLOPS_ADMIN_PASSWORD" not in env
    secrets = {s["metadata"]["name"]: s for s in of_kind(rendered(), "Secret")}
    assert {"access-key-id", "secret-access-key"} <= set(
        secrets["mlops-backup-s3-credentials"]["stringData"]
    )


def test_it_is_hardened_like_the_platform_pods() -> None:
    pod = pod_template(_cronjob())["spec"]
    api = pod_template(find(rendered(), "Deployment", "api-server"))["spec"]
    assert pod["securityContext"] == api["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == BACKUP
    (container,) = pod["containers"]
    assert container["securityContext"] == api["containers"][0]["securityContext"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_the_backup_missed_alert_watches_it() -> None:
    rules = yaml.safe_load((PRODUCTION / "monitoring/rules/kubernetes.yaml").read_text())
    missed = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "MLOpsBackupMissed"
    ]
    assert any("mlops_backup_last_success_timestamp_seconds" in r["expr"] for r in missed)
    selectors = [m.group(1) for r in missed for m in re.finditer(r'cronjob=~"([^"]+)"', r["expr"])]
    assert selectors and all(re.fullmatch(s, BACKUP) for s in selectors), selectors


def test_a_release_moves_it_to_the_new_image() -> None:
    """Like the Deployments, so a backup's manifest names the running platform version."""
    workflow = (PRODUCTION.parents[1] / ".github/workflows/production-deploy.yml").read_text()
    (container,) = pod_template(_cronjob())["spec"]["containers"]
    assert f'kubectl set image cronjob/{BACKUP} "{container["name"]}=$IMAGE_TAG"' in workflow
