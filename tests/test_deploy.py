"""The deployment files (docs/deploy.md): the image recipe, the entrypoint, compose, kustomize.

No image is built here (tests run without a registry or a container runtime); what can be checked
without one is checked for real: the entrypoint runs against real SQLite and PostgreSQL, the
gateway config passes the project's validation, kustomize renders the manifests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml

from llmgw.config import ConfigError, load_config
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
#: what a deployment provides from secrets; the config refuses to load without each
SECRETS = {
    "LLMGW_ADMIN_KEY": "sk-admin-test",
    "LLMGW_PII_SALT": "salt",
    "LLMGW_UPSTREAM_API_KEY": "sk-upstream",
    "LLMGW_REDIS_URL": "redis://redis:6379/0",
    "LLMGW_OPENSEARCH_URL": "http://opensearch:9200",
}


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    bin_dir = str(Path(sys.executable).parent)  # the venv's `llmgw`
    env.update(SECRETS, PATH=f"{bin_dir}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
               LLMGW_CONFIG=str(DEPLOY / "llmgw.yaml"), LLMGW_DATABASE_URL=db_url, **extra)  # fmt: skip
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


# --- the gateway config -----------------------------------------------------------------------


def test_deploy_config_passes_validation_and_uses_the_shared_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, "LLMGW_DATABASE_URL": "postgresql://u:p@db/llmgw"}.items():
        monkeypatch.setenv(name, value)
    config = load_config(DEPLOY / "llmgw.yaml")
    assert config.storage.url.startswith("postgresql://")
    stores = (config.limits.store, config.cache.exact_store, config.cache.semantic_store)
    assert stores == ("redis", "redis", "opensearch")
    assert config.server.host == "0.0.0.0" and not config.auth.allow_anonymous
    assert config.guards.enabled and config.guards.hash_salt == "salt"


def test_deploy_config_refuses_to_load_without_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*SECRETS, "LLMGW_DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as err:
        load_config(DEPLOY / "llmgw.yaml")
    for name in [*SECRETS, "LLMGW_DATABASE_URL"]:
        assert name in str(err.value)


def test_kubernetes_config_is_the_same_file() -> None:
    assert (DEPLOY / "k8s" / "llmgw.yaml").read_text() == (DEPLOY / "llmgw.yaml").read_text(), (
        "deploy/k8s/llmgw.yaml is a copy of deploy/llmgw.yaml (kustomize reads only its own folder): cp it"
    )


# --- the entrypoint ---------------------------------------------------------------------------


def test_entrypoint_checks_config_migrates_then_serves_with_workers(db_url: str, tmp_path: Path) -> None:
    done = _run([str(ENTRYPOINT), "--host", "0.0.0.0"], _env(db_url, LLMGW_WORKERS="2", LLMGW_DRY_RUN="1"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "llmgw.yaml: ok" in done.stdout and "storage: tables up to date" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "exec llmgw serve --workers 2 --host 0.0.0.0"
    engine = sqlalchemy.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    engine.dispose()
    assert {"api_keys", "requests", "usage", "guard_events", "audit_checkpoints"} <= tables, tables


def test_entrypoint_runs_another_command_after_the_same_steps(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/gw.db"
    done = _run([str(ENTRYPOINT), "llmgw", "audit", "verify"], _env(db), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "storage: tables up to date" in done.stdout
    assert "guard_events: ok; 0 event(s)" in done.stderr


def test_entrypoint_stops_before_serving_when_the_database_never_answers(tmp_path: Path) -> None:
    db = f"postgresql://llmgw@127.0.0.1:{free_port()}/llmgw"  # nothing listens there
    done = _run([str(ENTRYPOINT)], _env(db, LLMGW_DB_WAIT_S="1", LLMGW_DRY_RUN="1"), tmp_path)
    assert done.returncode == 1
    assert "database is not reachable" in done.stderr and "after 1s" in done.stderr
    assert "exec" not in done.stdout


def test_entrypoint_stops_on_an_invalid_config(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path}/gw.db", LLMGW_DRY_RUN="1")
    del env["LLMGW_UPSTREAM_API_KEY"]
    done = _run([str(ENTRYPOINT)], env, tmp_path)
    assert done.returncode == 2
    assert "LLMGW_UPSTREAM_API_KEY is not set" in done.stderr
    assert not (tmp_path / "gw.db").exists(), "the database is not touched before the config is valid"


# --- the image recipe -------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_containerfile_is_multi_stage_non_root_with_a_readiness_healthcheck() -> None:
    steps = _instructions(ROOT / "Containerfile")
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim"), "the base image is a build argument, slim by default"
    froms = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    assert len(froms) >= 2 and all(steps[i][1].startswith("${BASE_IMAGE}") for i in froms)
    runtime = steps[froms[-1] :]
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [arg for op, arg in runtime if op == "HEALTHCHECK"]
    assert health and "/readyz" in health[0]
    assert ("ENTRYPOINT", '["/app/deploy/entrypoint.sh"]') in runtime
    assert not any(op in ("RUN", "COPY") for op, _ in runtime[runtime.index(("USER", users[-1])) :])


def test_containerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = {line.strip() for line in (ROOT / ".containerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}  # fmt: skip
    assert {".git", ".venv"} <= ignored
    assert (ROOT / ".dockerignore").read_text() == (ROOT / ".containerignore").read_text()
    for op, arg in _instructions(ROOT / "Containerfile"):
        if op == "COPY" and not arg.startswith("--from"):
            *sources, _ = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.split("/")[0] not in ignored, f"{source} is copied but .containerignore drops it"


# --- compose and kustomize --------------------------------------------------------------------


def test_compose_names_the_whole_stack() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    assert set(services) == {"gateway-1", "gateway-2", "postgres", "redis", "opensearch"}
    assert services["postgres"]["image"].startswith("docker.io/library/postgres:")
    assert services["redis"]["image"].startswith("docker.io/library/redis:")
    assert services["opensearch"]["image"].startswith("docker.io/opensearchproject/opensearch:")
    for name in ("gateway-1", "gateway-2"):
        gateway = services[name]
        assert gateway["build"]["dockerfile"] == "Containerfile"
        assert (DEPLOY / gateway["build"]["context"] / "Containerfile").exists()
        env = gateway["environment"]
        assert env["LLMGW_CONFIG"] == "/app/deploy/llmgw.yaml"
        assert "@postgres:" in env["LLMGW_DATABASE_URL"] and "//redis:" in env["LLMGW_REDIS_URL"]
        assert "//opensearch:" in env["LLMGW_OPENSEARCH_URL"]
        assert set(gateway["depends_on"]) == {"postgres", "redis", "opensearch"}
        assert any(v.startswith("./llmgw.yaml:") for v in gateway["volumes"])
    assert services["gateway-1"]["ports"] != services["gateway-2"]["ports"]
    env_example = (DEPLOY / "env.example").read_text()
    for name in [n for n in SECRETS if not n.endswith("_URL")]:
        assert f"{name}=" in env_example


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed (apt-get install kubectl)")
def test_kustomize_renders_a_hardened_deployment() -> None:
    done = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(done.stdout)}
    assert set(docs) == {"ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    assert docs["ConfigMap"]["data"]["llmgw.yaml"] == (DEPLOY / "llmgw.yaml").read_text()
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["envFrom"] == [{"secretRef": {"name": "llmgw-secrets"}}]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
