"""docker-compose.yml: the services, their start order, the settings every gateway service reads."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
WORKERS = {"worker-extraction": "extraction", "worker-io": "analysis,enrichment"}
GATEWAY_SERVICES = {"migrate", "api", *WORKERS, "relay", "consumer", "flower"}
AFTER_MIGRATE = {
    "migrate": "service_completed_successfully",
    "redis": "service_healthy",
}


def settings_variables() -> set[str]:
    return {f.metadata["env"] for f in dataclasses.fields(Settings)}


def conditions(service: dict[str, Any]) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in service.get("depends_on", {}).items()}


def assert_the_whole_system(config: dict[str, Any]) -> None:
    """The services and start order the README promises, on a raw or a resolved compose file."""
    services = config["services"]
    assert set(services) == {"postgres", "redis"} | GATEWAY_SERVICES
    assert conditions(services["migrate"]) == {"postgres": "service_healthy"}
    for name in ("api", *WORKERS, "relay", "consumer"):
        assert conditions(services[name]) == AFTER_MIGRATE, name
    assert conditions(services["flower"]) == {"redis": "service_healthy"}
    for name in ("postgres", "redis", "api", *WORKERS, "relay", "consumer", "flower"):
        assert services[name]["healthcheck"]["test"], name
    assert services["relay"]["healthcheck"]["test"] == ["CMD", "gateway", "probe", "relay"]
    assert services["consumer"]["healthcheck"]["test"] == ["CMD", "gateway", "probe", "consumer"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])
    assert services["redis"]["command"][-2:] == ["--appendonly", "yes"]
    assert services["api"]["command"][:2] == ["gunicorn", "wsgi:app"]
    for name, queues in WORKERS.items():  # every stage's queue has a worker
        assert services[name]["command"][:4] == ["celery", "-A", "worker", "worker"], name
        assert f"--queues={queues}" in services[name]["command"], name
    assert services["relay"]["command"] == ["gateway", "relay"]
    assert services["consumer"]["command"] == ["gateway", "consume"]
    assert services["flower"]["command"][:4] == ["celery", "-A", "worker", "flower"]
    assert services["migrate"]["command"] == ["gateway", "migrate"]
    assert services["migrate"]["restart"] == "no"


def test_compose_file_runs_every_process_in_order():
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert_the_whole_system(config)


def test_every_gateway_service_reads_env_and_compose_sets_only_its_own_addresses():
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = config["services"]
    shared = config["x-environment"]
    for name in GATEWAY_SERVICES:
        assert services[name]["env_file"] == ".env", name
        # The one x-environment block (merged, not copied, where a worker adds its pool).
        environment = dict(services[name]["environment"])
        pool = environment.pop("WORKER_POOL", None)
        events = environment.pop("FLOWER_ENABLE_EVENTS", None)
        assert environment == shared, name
        assert pool == {"worker-extraction": "prefork", "worker-io": "threads"}.get(name), name
        # Flower asks the workers for task events only when they send them (TASK_EVENTS).
        assert events == ("${TASK_EVENTS:-false}" if name == "flower" else None), name
    assert set(shared) == {
        "DATABASE_URL", "REDIS_URL", "FLOWER_BASIC_AUTH", "API_KEY_SECRET", "BIND_ADDRESS"
    }  # fmt: skip
    # Keys unless .env says otherwise; off would be refused on this address (docs/security.md).
    assert Settings.from_env({}).auth_mode == "keys"
    assert shared["BIND_ADDRESS"] == "0.0.0.0"
    assert shared["API_KEY_SECRET"].startswith("${API_KEY_SECRET:?")
    assert shared["REDIS_URL"] == "redis://redis:6379/0"
    assert "@postgres:5432/" in shared["DATABASE_URL"]


def test_env_example_names_every_variable_compose_reads():
    compose = (ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert interpolated - listed == set()
    assert {"POSTGRES_USER", "EXTRACTION_PROCESSES", "FLOWER_BASIC_AUTH"} <= interpolated


def _compose_command() -> list[str]:
    """`docker compose` (the plugin) or the standalone `docker-compose`; skip without either."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither the docker compose plugin nor docker-compose is installed")


def _compose_config(project: Path, flower_basic_auth: str) -> subprocess.CompletedProcess[str]:
    """`docker compose config` on a copy of the compose file, with .env.example as its .env
    (uncommented, so that every setting reaches the services) and LOG_LEVEL=DEBUG set."""
    shutil.copy(ROOT / "docker-compose.yml", project)
    dotenv = re.sub(r"^# ([A-Z][A-Z0-9_]+=)", r"\1", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    dotenv = dotenv.replace("LOG_LEVEL=INFO", "LOG_LEVEL=DEBUG")
    dotenv = dotenv.replace("FLOWER_BASIC_AUTH=", f"FLOWER_BASIC_AUTH={flower_basic_auth}")
    dotenv = dotenv.replace("API_KEY_SECRET=", "API_KEY_SECRET=s3cret-key-secret")
    (project / ".env").write_text(dotenv)
    env = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    # `config` only reads and resolves the file: no Docker daemon is needed.
    return subprocess.run(
        [*_compose_command(), "config"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_config_resolves_the_whole_system(tmp_path):
    done = _compose_config(tmp_path, "ops:s3cret")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert_the_whole_system(config)
    for name in GATEWAY_SERVICES:
        environment = config["services"][name]["environment"]
        assert environment["FLOWER_BASIC_AUTH"] == "ops:s3cret", name
        assert environment["LOG_LEVEL"] == "DEBUG", name  # from .env
        assert environment["REDIS_URL"] == "redis://redis:6379/0", name  # compose's own
    # Published on the host's loopback only, by default.
    assert published(config["services"]["api"]) == {("127.0.0.1", "8000")}
    assert published(config["services"]["flower"]) == {("127.0.0.1", "5555")}


def published(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(host address, host port) of each published port, from v2's long or v1's short syntax."""
    pairs = set()
    for port in service["ports"]:
        if isinstance(port, dict):
            pairs.add((port.get("host_ip", ""), str(port["published"])))
        else:
            *address, host_port, _ = port.split("/")[0].split(":")
            pairs.add(("".join(address), host_port))
    return pairs


def test_docker_compose_refuses_to_start_without_flower_credentials(tmp_path):
    done = _compose_config(tmp_path, "")
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH" in done.stderr
