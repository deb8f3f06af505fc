"""Redis nodes of a test's own, on free ports in a temporary directory: a Sentinel group (master, replica and
three sentinels, Debian's `redis-sentinel`) and a three-master Redis Cluster. Every wait has a deadline; every
node is killed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.services import require_service

from .servers import Process, base_env, free_ports, wait_until

MASTER_NAME = "qms"
# Small on purpose: the sentinels call the master down after one second and may retry a failover soon after.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def require_redis_binaries() -> None:
    """redis-server and redis-sentinel (the Makefile's `redis-sentinel` target installs them)."""
    missing = [name for name in ("redis-server", "redis-sentinel", "redis-cli") if not shutil.which(name)]
    if missing:
        require_service(" and ".join(missing), FileNotFoundError("run `make redis-sentinel`"))


def start_node(name: str, port: int, directory: Path, *config: str, binary: str = "redis-server") -> Process:
    """One redis-server (or sentinel) on `port`, its files in `directory/name`, its config lines `config`."""
    home = directory / name
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "redis.conf"
    conf.write_text("\n".join((f"port {port}", "bind 127.0.0.1", f"dir {home}", "save ''", "protected-mode no",
                               *config)) + "\n")
    return Process(name, [binary, str(conf)], base_env(), directory)


def wait_answering(port: int, process: Process, timeout: float = 15) -> redis.Redis:
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)

    def pings() -> bool:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.name} exited:\n{process.log()}")
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(pings, timeout, f"{process.name} on port {port} does not answer")
    return client


@dataclass
class SentinelGroup:
    """A master, its replica and three sentinels watching it as MASTER_NAME."""

    directory: Path
    ports: dict[str, int]
    nodes: dict[str, Process] = field(default_factory=dict)

    @property
    def sentinel_addresses(self) -> str:
        """As QMS_REDIS_SENTINELS wants them."""
        return ",".join(f"127.0.0.1:{self.ports[name]}" for name in ("sentinel1", "sentinel2", "sentinel3"))

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], socket_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        """The master the sentinels name now."""
        return int(self.client("sentinel1").sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def wait_replicated(self, timeout: float = 15) -> None:
        """The replica is in sync with the master (its link up and its offset the master's)."""
        master = self.client("master")

        def synced() -> bool:
            info = master.info("replication")
            replica = info.get("slave0") or {}
            return replica.get("state") == "online" and replica.get("offset") == info["master_repl_offset"]

        wait_until(synced, timeout, lambda: f"replica not in sync: {master.info('replication')}")

    def wait_sentinels_ready(self, timeout: float = 20) -> None:
        """Every sentinel knows the replica and the two other sentinels: a failover can be agreed."""
        def ready() -> bool:
            for name in ("sentinel1", "sentinel2", "sentinel3"):
                state = self.client(name).sentinel_master(MASTER_NAME)
                if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                    return False
            return True

        wait_until(ready, timeout, "the sentinels do not know each other and the replica yet", interval=0.2)

    def wait_promoted(self, old_port: int, timeout: float = 30) -> int:
        """The port of the new master, once every sentinel names it, up (as clients check), and it is a master."""
        def promoted() -> int | None:
            states = [self.client(name).sentinel_master(MASTER_NAME) for name in ("sentinel1", "sentinel2",
                                                                                   "sentinel3")]
            ports = {int(state["port"]) for state in states}
            if len(ports) != 1 or old_port in ports or any(state["is_sdown"] or state["is_odown"]
                                                           for state in states):
                return None
            port = ports.pop()
            return port if redis.Redis(port=port, socket_timeout=2).role()[0] in (b"master", "master") else None

        return wait_until(promoted, timeout, "no replica promoted", interval=0.05)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.kill()
            node.stop()


@contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    """Start the group, wait until a failover could happen, kill every node at the end."""
    require_redis_binaries()
    names = ("master", "replica", "sentinel1", "sentinel2", "sentinel3")
    group = SentinelGroup(directory, dict(zip(names, free_ports(len(names)), strict=True)))
    try:
        master = group.ports["master"]
        group.nodes["master"] = start_node("master", master, directory, "appendonly no")
        wait_answering(master, group.nodes["master"])
        group.nodes["replica"] = start_node("replica", group.ports["replica"], directory,
                                            f"replicaof 127.0.0.1 {master}")
        wait_answering(group.ports["replica"], group.nodes["replica"])
        for name in names[2:]:
            group.nodes[name] = start_node(name, group.ports[name], directory, "sentinel resolve-hostnames no",
                                           f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2",
                                           f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                                           f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                                           binary="redis-sentinel")
            wait_answering(group.ports[name], group.nodes[name])
        group.wait_replicated()
        group.wait_sentinels_ready()
        yield group
    finally:
        group.stop()


@dataclass
class Cluster:
    """Three cluster masters (no replicas), every slot covered."""

    ports: list[int]
    nodes: list[Process]

    @property
    def url(self) -> str:
        """A seed node, as QMS_REDIS_CLUSTER_URL wants it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"


@contextmanager
def redis_cluster(directory: Path, masters: int = 3) -> Iterator[Cluster]:
    """Start `masters` cluster-enabled servers, create the cluster over them, kill them at the end."""
    require_redis_binaries()
    ports, bus_ports = free_ports(masters), free_ports(masters)  # the bus port: port + 10000 may not exist
    cluster = Cluster(ports, [])
    try:
        for index, (port, bus_port) in enumerate(zip(ports, bus_ports, strict=True)):
            cluster.nodes.append(start_node(f"cluster{index}", port, directory, "cluster-enabled yes",
                                            f"cluster-port {bus_port}",
                                            f"cluster-config-file {directory}/cluster{index}/nodes.conf",
                                            "cluster-node-timeout 2000", "appendonly no"))
            wait_answering(port, cluster.nodes[-1])
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
                        "--cluster-yes"], check=True, capture_output=True, timeout=30)
        clients = [redis.Redis(port=port, socket_timeout=2, decode_responses=True) for port in ports]
        wait_until(lambda: all(_cluster_ok(client) for client in clients),
                   20, "the cluster never reached state ok on every node")
        yield cluster
    finally:
        for node in cluster.nodes:
            node.kill()
            node.stop()


def _cluster_ok(client: redis.Redis) -> bool:
    return client.execute_command("CLUSTER INFO")["cluster_state"] == "ok"
