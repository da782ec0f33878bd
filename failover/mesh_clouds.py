"""The drill's clouds from ``runtime.mesh``: the AWS stack (runtime.aws: Lambda + API Gateway
stand-in on moto's DynamoDB with Streams) and the Azure stack (runtime.azure: Functions host on
cosmosdb-server with the change-feed trigger), each on its own loopback address with its own
emulator, wired as replication peers.

DNS failover hands clients an address, never a port, so both clouds must listen on the same
port (443 in production): the mesh is started with the drill's port for every cloud.
``anti_entropy_every_s`` drives each cloud's scheduled anti-entropy (runtime.azure's timer, the
mesh's EventBridge stand-in for aws), which repairs what a crash lost in flight.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.base import ServerProcess
from failover.clouds import Cloud, Clouds


def mesh_available() -> bool:
    return importlib.util.find_spec("runtime.mesh") is not None


class MeshCloud(Cloud):
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.kind  # the provider name served_by reports
        self.address = inner.host
        self.port = inner.port
        self._seen: list[int] = []
        self.note_pids()

    def note_pids(self) -> None:
        """Every process the mesh runs for this cloud (runtime, emulator, scheduler, ...)."""
        for value in vars(self.inner).values():
            pid = value.pid if isinstance(value, ServerProcess) else None
            if pid and pid not in self._seen:
                self._seen.append(pid)

    def pids(self) -> list[int]:
        self.note_pids()
        return list(self._seen)

    def freeze(self) -> None:
        self.inner.freeze()

    def thaw(self) -> None:
        self.inner.thaw()

    def kill(self) -> None:
        self.note_pids()
        self.inner.kill()

    def restart(self) -> None:
        self.inner.restart()
        self.note_pids()

    def stop_store(self) -> None:
        self.inner.stop_store()

    def start_store(self) -> None:
        self.inner.start_store()


class MeshClouds(Clouds):
    primary: MeshCloud
    secondary: MeshCloud

    def __init__(
        self,
        names: tuple[str, str],
        addresses: tuple[str, str],
        port: int,
        state_dir: Path,
        anti_entropy_every_s: float = 30.0,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = dict(settings or {})  # added to every cloud's (e.g. the test issuer's OVERCAST_AUTH_*)
        self.names = names
        self.addresses = addresses
        self.port = port
        self.state_dir = state_dir
        self.anti_entropy_every_s = anti_entropy_every_s
        self.mesh: Any = None

    def start(self) -> None:
        from runtime import mesh as meshmod

        unexpected = [
            (name, address)
            for name, address in zip(self.names, self.addresses, strict=True)
            if meshmod.KIND_HOSTS.get(name) != address
        ]
        if unexpected:
            raise ValueError(
                f"runtime.mesh puts each cloud on its own fixed address ({meshmod.KIND_HOSTS}); got {unexpected}"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.mesh = meshmod.Mesh.start(
            list(self.names),
            workdir=self.state_dir,
            env=self.settings,
            port=self.port,
            anti_entropy_every_s=self.anti_entropy_every_s,
        )
        try:
            clouds = [self.mesh.cloud(name) for name in self.names]
            wrong = [(c.name, c.port) for c in clouds if c.port != self.port]
            if wrong:
                raise RuntimeError(f"runtime.mesh did not put the clouds on port {self.port}: {wrong}")
            self.primary, self.secondary = (MeshCloud(c) for c in clouds)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.mesh is not None:
            for cloud in (getattr(self, "primary", None), getattr(self, "secondary", None)):
                if cloud is not None:
                    cloud.note_pids()
            self.mesh.close()

    def replication_counts(self) -> dict[str, Any] | None:
        """Per cloud: records its peers' streams delivered, records anti-entropy repaired."""
        if self.mesh is None:
            return None
        counts: dict[str, Any] = self.mesh.replication_counts()
        return counts

    def verify_stores(self) -> dict[str, Any] | None:
        """Each cloud's own store read directly (DynamoDB, Cosmos), compared record by record."""
        if self.mesh is None:
            return None
        report = self.mesh.verify()
        data: dict[str, Any] = report.to_dict()
        return data
