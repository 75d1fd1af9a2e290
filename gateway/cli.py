"""The app's commands of the `gateway` console script (gateway.console), run inside create_app."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from gateway import keys
from gateway.db import upgrade_schema
from gateway.dlq_cli import dlq_command
from gateway.errors import GatewayError
from gateway.services import get_services

log = logging.getLogger(__name__)


@click.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (Alembic)."""
    upgrade_schema(get_services().settings.database_url)
    click.echo("database schema is up to date")


@click.command("relay")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between passes [RELAY_INTERVAL].",
)
def relay_command(interval: float | None) -> None:
    """Append the outbox's leftover events to the stream and dispatch stranded jobs, until SIGTERM."""
    from gateway import metrics
    from gateway.gauges import SystemGauges
    from gateway.relay import Relay

    settings = get_services().settings
    if settings.metrics_port:
        services = get_services()
        gauges = SystemGauges(
            services.database, services.redis, settings.events_stream, settings.dead_letter_stream
        )
        metrics.serve(settings.metrics_port, settings.metrics_bind_address, gauges)
    relay = Relay.from_app(current_app, stop=_stop_on_signals())
    if interval is not None:
        relay.interval = interval
    relay.run()


@click.command("consume")
@click.option("--group", help="Consumer group [CONSUMER_GROUP].")
@click.option("--consumer", help="Consumer name inside the group [CONSUMER_NAME].")
@click.option("--stream", help="Stream to read [EVENTS_STREAM].")
@click.option(
    "--claim-idle",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds an entry stays pending before it is reclaimed [CONSUMER_CLAIM_IDLE].",
)
@click.option(
    "--max-deliveries",
    type=click.IntRange(min=1),
    help="Deliveries before an entry goes to the dead-letter stream [CONSUMER_MAX_DELIVERIES].",
)
@click.option("--dead-letter-stream", help="Where failed entries go [DEAD_LETTER_STREAM].")
@click.option(
    "--block-ms", type=click.IntRange(min=1), default=1000, show_default=True,
    help="How long one read waits for new entries (also bounds the stop delay).",
)  # fmt: skip
@click.option(
    "--batch", type=click.IntRange(min=1), default=100, show_default=True, help="Entries per read."
)
@click.option("--tenant", help="Handle only this tenant's events (the others are acknowledged).")
def consume_command(**options: Any) -> None:
    """Read job events with a consumer group and log each one, until SIGTERM/SIGINT."""
    from events.consumer import Consumer, ConsumerOptions, consumer_client

    settings = get_services().settings
    chosen = ConsumerOptions(
        stream=options["stream"] or settings.events_stream,
        group=options["group"] or settings.consumer_group,
        consumer=options["consumer"] or settings.consumer_name,
        dead_letter_stream=options["dead_letter_stream"] or settings.dead_letter_stream,
        dead_letter_maxlen=settings.dead_letter_maxlen,
        claim_idle=options["claim_idle"] or settings.consumer_claim_idle,
        max_deliveries=options["max_deliveries"] or settings.consumer_max_deliveries,
        block_ms=options["block_ms"],
        batch=options["batch"],
        tenant=options["tenant"],
    )
    client = consumer_client(settings.redis_url, settings.redis_timeout, chosen.block_ms)
    try:
        Consumer(client, chosen, stop=_stop_on_signals()).run()
    finally:
        client.close()


@click.group("keys", cls=AppGroup)
def keys_group() -> None:
    """Manage the API keys of tenants (AUTH_MODE=keys)."""


@keys_group.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for (created if new).")
@click.option("--read-only", is_flag=True, help="The key may read jobs, not create or cancel them.")
def keys_create_command(tenant: str, read_only: bool) -> None:
    """Create a key and print it, once: only its hash is stored."""
    services = get_services()
    with services.database.session() as session:
        try:
            key = keys.create_key(
                session, tenant, services.settings.api_key_secret, read_only=read_only
            )
        except GatewayError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(key)
    click.echo(f"(the key of tenant {tenant}; store it now, it is not shown again)", err=True)


@keys_group.command("list")
@click.option("--tenant", help="Only this tenant's keys.")
def keys_list_command(tenant: str | None) -> None:
    """List keys: prefix, tenant, access, created, revoked."""
    with get_services().database.reader() as session:
        found = keys.list_keys(session, tenant)
    for key in found:
        access = "read-only" if key.read_only else "read-write"
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-"
        created = key.created_at.isoformat(timespec="seconds")
        click.echo(f"{key.prefix}  {key.tenant_id}  {access}  created {created}  revoked {revoked}")


@keys_group.command("revoke")
@click.argument("prefix")
def keys_revoke_command(prefix: str) -> None:
    """Revoke the key with this prefix; requests with it get 401 from then on."""
    with get_services().database.session() as session:
        try:
            changed = keys.revoke_key(session, prefix)
        except GatewayError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"{prefix} revoked" if changed else f"{prefix} was already revoked")


# AppGroup: each probe runs in the app's context, like the commands above.
probe_group = AppGroup("probe", help="Health probes of the processes that serve no HTTP; exit 1 when unhealthy.")  # fmt: skip


@probe_group.command("relay")
@click.option("--max-age", type=float, default=60.0, show_default=True,
              help="Seconds past DISPATCH_GRACE an event may wait for the stream.")  # fmt: skip
def probe_relay(max_age: float) -> None:
    """Healthy while no event waits unpublished longer than DISPATCH_GRACE + max-age."""
    from datetime import timedelta

    from gateway.outbox import overdue

    services = get_services()
    older_than = timedelta(seconds=services.settings.dispatch_grace + max_age)
    with services.database.reader() as session:
        late = overdue(session, older_than)
    if late:
        raise click.ClickException(f"{late} events older than {older_than} not on the stream")
    click.echo("relay: no overdue event")


@probe_group.command("consumer")
@click.option("--max-idle", type=float, default=30.0, show_default=True,
              help="Seconds since the consumer's last read.")  # fmt: skip
def probe_consumer(max_idle: float) -> None:
    """Healthy while CONSUMER_NAME polled its group within max-idle seconds."""
    import redis

    from events.consumer import seconds_since_seen

    settings = get_services().settings
    name = settings.consumer_name
    try:
        seen = seconds_since_seen(
            get_services().redis, settings.events_stream, settings.consumer_group, name
        )
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis unavailable: {exc}") from exc
    if seen is None or seen >= max_idle:
        ago = "never" if seen is None else f"{seen:.1f} s ago"
        raise click.ClickException(f"consumer {name} has not read for {max_idle} s (last: {ago})")
    click.echo(f"consumer {name}: read {seen:.1f} s ago")


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a loop ends after its current step."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received, stopping after the current step", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def init_app(app: Flask) -> None:
    """Register the commands on `app`."""
    app.cli.add_command(migrate_command)
    app.cli.add_command(relay_command)
    app.cli.add_command(consume_command)
    app.cli.add_command(keys_group)

    app.cli.add_command(probe_group)
    app.cli.add_command(dlq_command)
