"""kombu's Redis transport, fixed so that a worker survives Redis going away while it holds a
stage, and so that a command does not build a new Redis client; and what the broker holds.

kombu 5.7 closes a channel by first reading the reply of its pending BRPOP. With Redis gone that
read fails and the close stops half-way; Celery then detaches the connection and closes the
channel again, which tries to restore the unacknowledged messages through the detached
connection and kills the worker ("Unrecoverable error: AttributeError: 'NoneType' object has
no attribute 'hostname'"). Here the failed read no longer stops the first close.

kombu also builds a fresh redis-py client for every publish, acknowledgement and event; with
redis-py 8 that costs more than the command (a profile of the worker put it at an eighth of
its CPU). A client is only a handle on the channel's connection pool, safe across threads, so
the channel keeps one per pool.

kombu pops a message (BRPOP) before it records it as unacknowledged (HSET), in two round
trips: a message popped by a worker that dies, or loses Redis, in between is held nowhere and
never delivered again. `held_task_ids` reads what the broker holds, so that the relay can find
and resend such a stage (`tasks.pipeline.Pipeline.resend_lost`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import kombu.transport
from kombu.transport import redis
from kombu.transport.virtual import Empty
from redis import Redis


class Channel(redis.Channel):
    """A Redis channel whose close goes through when Redis is already gone, with one client."""

    _client_for_pool: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        cached = self._client_for_pool
        if cached is None or cached.connection_pool is not self.pool:  # a new pool after errors
            cached = self._client_for_pool = self._create_client()
        yield cached

    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except (Empty, *self.connection_errors):
                # Lost with the connection. The unacknowledged messages stay in Redis and come
                # back after the visibility timeout.
                pass
        super().close()


class Transport(redis.Transport):
    """The Redis transport with the channel above."""

    Channel = Channel


def use_for_redis_urls() -> None:
    """Make redis:// and rediss:// broker URLs use this transport; call before connecting.

    An alias rather than Celery's broker_transport setting, so URLs keep their scheme for
    the logs and for Flower, which picks its broker client by scheme.
    """
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
    if kombu.transport.get_transport_cls("redis") is not Transport:
        raise RuntimeError("kombu resolved redis:// before the fixed transport was installed")


def held_task_ids(client: Redis, queues: Iterable[str]) -> set[str]:
    """The task ids of every message the broker holds: waiting in `queues`, or delivered to a
    worker and not acknowledged yet (running, reserved, or waiting for a retry's countdown).

    A message moves from a queue to the unacknowledged hash, or back, in one transaction,
    except at the pop described above; and it leaves the hash only when its task is done.
    """
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.lrange(queue, 0, -1)
    pipe.hvals(Channel.unacked_key)
    *queued, unacked = pipe.execute()
    messages = [json.loads(raw) for held in queued for raw in held]
    messages += [json.loads(raw)[0] for raw in unacked]  # [message, exchange, routing key]
    # A message that is not a task's (another producer on these keys) holds no stage.
    return {str(m["headers"]["id"]) for m in messages if "id" in m.get("headers", {})}
