"""API keys: who may call, how keys are stored and managed, and the modes' refusal rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway import keys
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.launcher import auth_environment, check_auth
from gateway.models import ApiKey
from gateway.supervisor import ConsolePrinter
from tests.factories import job_payload
from tests.support import SECRET, api_key, keyed_settings

PROBLEM = "application/problem+json"


@pytest.fixture
def keyed(make_app):
    return make_app(**keyed_settings())


def assert_unauthorized(response, error: str | None):
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.json["status"] == 401 and response.json["title"] == "Unauthorized"
    expected = 'Bearer realm="gateway"' + (f', error="{error}"' if error else "")
    assert response.headers["WWW-Authenticate"] == expected


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/jobs/"),
        ("post", "/api/jobs/"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000/"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000/text"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000/events/"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/cancel/"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/retry/"),
        ("get", "/api/providers/"),
    ],
)
def test_every_job_route_asks_for_a_key(keyed, method, path):
    client = keyed.test_client()
    response = getattr(client, method)(path, json=job_payload() if method == "post" else None)
    assert_unauthorized(response, None)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer gw_0123456789ab_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer gw_"],
)
def test_a_wrong_key_or_scheme_is_401_invalid_token(keyed, authorization):
    api_key(keyed, "acme")
    response = keyed.test_client().get("/api/jobs/", headers={"Authorization": authorization})
    assert_unauthorized(response, "invalid_token")


def test_a_valid_key_is_let_in_and_a_revoked_one_gets_401(keyed, services):
    headers = api_key(keyed, "acme")
    client = keyed.test_client()
    assert client.get("/api/jobs/", headers=headers).status_code == 200
    assert client.post("/api/jobs/", json=job_payload(), headers=headers).status_code == 201

    prefix = headers["Authorization"].removeprefix("Bearer ")[: keys.PREFIX_LENGTH]
    with services.database.session() as session:
        assert keys.revoke_key(session, prefix) is True
        assert keys.revoke_key(session, prefix) is False
    assert_unauthorized(client.get("/api/jobs/", headers=headers), "invalid_token")


def test_a_key_of_a_known_prefix_with_a_wrong_secret_part_is_refused(keyed):
    key = api_key(keyed, "acme")["Authorization"]
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = keyed.test_client().get("/api/jobs/", headers={"Authorization": forged})
    assert_unauthorized(response, "invalid_token")


def test_a_read_only_key_reads_but_gets_403_on_writes(keyed):
    headers = api_key(keyed, "acme", read_only=True)
    client = keyed.test_client()
    assert client.get("/api/jobs/", headers=headers).status_code == 200
    response = client.post("/api/jobs/", json=job_payload(), headers=headers)
    assert response.status_code == 403
    assert response.mimetype == PROBLEM
    assert response.json["detail"] == "This API key is read-only."
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope"'
    )


def test_probes_and_the_openapi_document_stay_open(keyed):
    client = keyed.test_client()
    assert client.get("/healthz").status_code == 200
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert spec.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec.json["security"] == [{"bearerAuth": []}]
    assert spec.json["paths"]["/healthz"]["get"]["security"] == []


def test_with_auth_off_the_openapi_document_asks_for_no_key(client):
    assert "security" not in client.get("/api/openapi.json").json


def test_keys_are_stored_only_as_their_hmac(keyed, services):
    key = api_key(keyed, "acme")["Authorization"].removeprefix("Bearer ")
    with services.database.session() as session:
        stored = session.scalars(select(ApiKey)).one()
    assert stored.prefix == key[: keys.PREFIX_LENGTH] and stored.tenant_id == "acme"
    assert stored.digest == keys.digest(key, SECRET) and key not in stored.digest
    assert stored.digest != keys.digest(key, "another secret")


def test_without_a_server_secret_keys_mode_refuses_every_job_request(make_app):
    app = make_app(auth_mode="keys", api_key_secret="")
    response = app.test_client().get("/api/jobs/", headers={"Authorization": "Bearer x"})
    assert response.status_code == 500
    assert response.mimetype == PROBLEM
    assert "API_KEY_SECRET" in response.json["detail"]


def test_with_auth_off_no_key_is_needed_and_a_header_is_ignored(client):
    assert client.get("/api/jobs/").status_code == 200
    response = client.get("/api/jobs/", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200


def test_the_cli_creates_lists_and_revokes_keys(keyed):
    runner = keyed.test_cli_runner()
    created = runner.invoke(args=["keys", "create", "--tenant", "acme"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith(keys.PREFIX_START)
    prefix = key[: keys.PREFIX_LENGTH]
    client = keyed.test_client()
    assert client.get("/api/jobs/", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    listed = runner.invoke(args=["keys", "list"])
    assert listed.exit_code == 0
    assert prefix in listed.output and "acme" in listed.output and "read-write" in listed.output
    assert key not in listed.output

    revoked = runner.invoke(args=["keys", "revoke", prefix])
    assert revoked.exit_code == 0 and f"{prefix} revoked" in revoked.output
    assert client.get("/api/jobs/", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert "revoked 20" in runner.invoke(args=["keys", "list"]).output

    unknown = runner.invoke(args=["keys", "revoke", "gw_000000000000"])
    assert unknown.exit_code != 0 and "No API key" in unknown.output
    bad = runner.invoke(args=["keys", "create", "--tenant", "no spaces"])
    assert bad.exit_code != 0 and "Invalid tenant name" in bad.output


def test_the_cli_refuses_to_create_a_key_without_the_server_secret(make_app):
    app = make_app(auth_mode="keys", api_key_secret="")
    done = app.test_cli_runner().invoke(args=["keys", "create", "--tenant", "acme"])
    assert done.exit_code != 0 and "API_KEY_SECRET" in done.output


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.10", "::"])
def test_auth_off_is_refused_on_a_non_loopback_address_unless_forced(address):
    with pytest.raises(ConfigError, match="AUTH_MODE=off is refused"):
        Settings.from_env({"AUTH_MODE": "off", "BIND_ADDRESS": address})
    forced = Settings.from_env({"AUTH_MODE": "off", "BIND_ADDRESS": address, "AUTH_OFF_FORCE": "1"})
    assert forced.auth_mode == "off"
    assert Settings.from_env({"BIND_ADDRESS": address}).auth_mode == "keys"


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_auth_off_is_allowed_on_loopback(address):
    assert Settings.from_env({"AUTH_MODE": "off", "BIND_ADDRESS": address}).auth_mode == "off"


def test_make_run_defaults_to_auth_off_and_says_so_loudly(capsys):
    assert auth_environment({})["AUTH_MODE"] == "off"
    assert auth_environment({"AUTH_MODE": "keys"})["AUTH_MODE"] == "keys"
    printer = ConsolePrinter(__import__("sys").stdout)
    check_auth(Settings.from_env(auth_environment({})), printer)
    assert "AUTH_MODE=off: NO AUTHENTICATION" in capsys.readouterr().out


def test_make_run_with_keys_needs_the_server_secret():
    printer = ConsolePrinter(__import__("sys").stdout)
    with pytest.raises(Exception, match="API_KEY_SECRET"):
        check_auth(Settings.from_env({"AUTH_MODE": "keys"}), printer)
    check_auth(Settings.from_env({"AUTH_MODE": "keys", "API_KEY_SECRET": "s"}), printer)
