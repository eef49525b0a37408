"""The Redis servers of one test worker: a Redis Stack, a Redis without modules and a Redis
Cluster, each on free loopback ports, with clients to look inside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from graphs.settings import Settings
from graphs.store.redis_client import RedisClient, build_redis
from scripts.processes import ManagedProcess, free_port
from scripts.redis_cluster import LocalCluster
from scripts.redis_stack import server_command, server_env


@dataclass
class RedisServer:
    url: str
    process: ManagedProcess


def start_redis(data_dir: Path, log_path: Path, *, with_modules: bool = True) -> RedisServer:
    """A private Redis Stack (or, without modules, a plain Redis) on a free loopback port."""
    port = free_port()
    process = ManagedProcess(
        server_command(port, data_dir, appendonly=False, with_modules=with_modules),
        env=server_env(),
        ready_text="Ready to accept connections",
        log_path=log_path,
    )
    process.start()
    return RedisServer(f"redis://127.0.0.1:{port}/0", process)


class RedisFlavours:
    """The Redis Stack of `redis_url`, and a plain Redis and a Redis Cluster started on first
    use, with the settings that point graphgate at each and a client to look inside."""

    def __init__(self, stack_url: str, root: Path, logs_dir: Path) -> None:
        self._stack_url = stack_url
        self._root = root
        self._logs_dir = logs_dir
        self._plain: RedisServer | None = None
        self._cluster: LocalCluster | None = None

    def settings(self, flavour: str) -> dict[str, str]:
        if flavour == "redis":
            return {"REDIS_URL": self._stack_url}
        if flavour == "plain":
            if self._plain is None:
                (data_dir := self._root / "plain").mkdir()
                log_path = self._logs_dir / "redis-plain.log"
                self._plain = start_redis(data_dir, log_path, with_modules=False)
            return {"REDIS_URL": self._plain.url}
        if flavour == "cluster":
            return {"REDIS_URL": self.cluster.url, "REDIS_CLUSTER": "true"}
        raise ValueError(f"no Redis flavour {flavour!r}")

    @property
    def cluster(self) -> LocalCluster:
        if self._cluster is None:
            self._cluster = LocalCluster(self._root / "cluster", self._logs_dir)
            self._cluster.start()
        return self._cluster

    def client(self, flavour: str, *, text: bool = True) -> redis.Redis | redis.RedisCluster:
        """A synchronous client of that flavour, to look at the keys graphgate left (as text,
        unless `text` is off)."""
        settings = self.settings(flavour)
        if "REDIS_CLUSTER" in settings:
            return redis.RedisCluster.from_url(settings["REDIS_URL"], decode_responses=text)
        return redis.Redis.from_url(settings["REDIS_URL"], decode_responses=text)

    def async_client(self, flavour: str) -> RedisClient:
        """graphgate's own asyncio client for that flavour, as a server builds it."""
        settings = self.settings(flavour)
        client = build_redis(
            Settings(redis_url=settings["REDIS_URL"], redis_cluster="REDIS_CLUSTER" in settings)
        )
        assert client is not None
        return client

    def stop(self) -> None:
        if self._plain is not None:
            self._plain.process.stop()
        if self._cluster is not None:
            self._cluster.stop()
