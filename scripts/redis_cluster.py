"""Run a local Redis Cluster: three masters with one replica each, on loopback, from the same
Redis binaries as `make redis` (no modules: the semantic cache, the one feature that needs
search, does not run on a cluster).

The tests, the failover drill and `make redis-cluster` use it. A node's failure is noticed
within `NODE_TIMEOUT_MS` and its replica takes over shortly after.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import ManagedProcess, free_port
from scripts.redis_stack import STACK_DIR, prepare, server_command, server_env

NODE_TIMEOUT_MS = 1000
READY = "Ready to accept connections"


@dataclass
class ClusterNode:
    port: int
    process: ManagedProcess

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalCluster:
    """`masters` masters with `replicas` replicas each, their logs in `log_dir`."""

    def __init__(self, data_dir: Path, log_dir: Path, *, masters: int = 3, replicas: int = 1):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.masters = masters
        self.replicas = replicas
        self.nodes: list[ClusterNode] = []

    @property
    def url(self) -> str:
        """A seed node's URL; the cluster client discovers the others from it."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        for _ in range(self.masters * (1 + self.replicas)):
            port = free_port()
            node_dir = self.data_dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            process = ManagedProcess(
                [
                    *server_command(port, node_dir, appendonly=False, with_modules=False),
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    # Its own free port for the cluster bus (by default port + 10000).
                    *("--cluster-port", str(free_port())),
                    *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                ],
                env=server_env(),
                ready_text=READY,
                log_path=self.log_dir / f"redis-cluster-{port}.log",
            )
            process.start()
            self.nodes.append(ClusterNode(port, process))
        self.cli(
            "--cluster",
            "create",
            *(node.address for node in self.nodes),
            *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
        )
        for node in self.nodes:
            node.process.wait_for_line(lambda line: "Cluster state changed: ok" in line, 30)
        for node in self.replica_nodes():
            node.process.wait_for_line(lambda line: "sync: Finished with success" in line, 30)

    def cli(self, *args: str, port: int | None = None) -> str:
        """Run `redis-cli` against a node (the first unless `port`) and return its output."""
        command = [str(STACK_DIR / "bin" / "redis-cli"), "-p", str(port or self.nodes[0].port)]
        result = subprocess.run(
            [*command, *args],
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    def _roles(self) -> dict[int, str]:
        """Each live node's port and role, as the cluster sees it now."""
        roles = {}
        for line in self.cli("cluster", "nodes", port=self.live_nodes()[0].port).splitlines():
            _, address, flags, *_ = line.split()
            if "fail" not in flags:
                port = int(address.split("@")[0].rsplit(":", 1)[1])
                roles[port] = "master" if "master" in flags else "replica"
        return roles

    def live_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process.running()]

    def master_nodes(self) -> list[ClusterNode]:
        roles = self._roles()
        return [node for node in self.live_nodes() if roles.get(node.port) == "master"]

    def replica_nodes(self) -> list[ClusterNode]:
        roles = self._roles()
        return [node for node in self.live_nodes() if roles.get(node.port) == "replica"]

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        """The live replica of `master`."""
        lines = [
            line.split() for line in self.cli("cluster", "nodes", port=master.port).splitlines()
        ]
        ids = {fields[0]: int(fields[1].split("@")[0].rsplit(":", 1)[1]) for fields in lines}
        master_id = next(fields[0] for fields in lines if ids[fields[0]] == master.port)
        ports = {ids[fields[0]] for fields in lines if fields[3] == master_id}
        return next(node for node in self.live_nodes() if node.port in ports)

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again on its port: it rejoins from its nodes.conf (a master
        that was failed over comes back as a replica of the node that replaced it)."""
        old = node.process
        node.process = ManagedProcess(
            old.command, env=old.env, ready_text=READY, log_path=old.log_path
        )
        node.process.start()

    def kill(self, node: ClusterNode) -> None:
        """Kill a node as a crash would (SIGKILL): no shutdown, no final sync."""
        assert node.process.process is not None
        node.process.process.send_signal(signal.SIGKILL)
        node.process.process.wait()

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()


def serve() -> None:
    """Run a throwaway local cluster in the foreground until interrupted."""
    prepare()
    with tempfile.TemporaryDirectory(prefix="redis-cluster-") as scratch:
        cluster = LocalCluster(Path(scratch), Path(scratch))
        cluster.start()
        try:
            print(
                f"Redis Cluster: {len(cluster.master_nodes())} masters with "
                f"{cluster.replicas} replica each; REDIS_URL={cluster.url} REDIS_CLUSTER=true "
                "(Ctrl-C stops it)",
                flush=True,
            )
            stop_signals = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
            signal.sigwait(stop_signals)
        finally:
            cluster.stop()


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    serve()


if __name__ == "__main__":
    main()
