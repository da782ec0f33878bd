"""The two clouds a drill runs against, and the process controls the faults need.

``Cloud`` is the drill's view of one cloud: where it listens, which processes it owns (to prove
they are all gone afterwards), and the controls the faults use. Backends:

- ``mesh`` (the default when runtime/mesh.py is present): the AWS stack and the Azure stack on the
  local runtime with their emulators, wired as replication peers (see failover/mesh_clouds.py).
- ``local``: two ``handlers.local`` SQLite servers without replication, for developing the
  DNS/health/load parts alone (the loss check fails there by design: nothing replicates).
"""

from __future__ import annotations

import signal
import sys
from abc import ABC, abstractmethod
from pathlib import Path

from emulators.base import ServerProcess


class Cloud(ABC):
    name: str  # the provider name served_by reports: aws, azure
    address: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @abstractmethod
    def pids(self) -> list[int]:
        """Every process this cloud started (servers and emulators), for the clean-up check."""

    @abstractmethod
    def freeze(self) -> None: ...
    @abstractmethod
    def thaw(self) -> None: ...
    @abstractmethod
    def kill(self) -> None: ...
    @abstractmethod
    def restart(self) -> None: ...

    def stop_store(self) -> None:
        raise NotImplementedError(f"{self.name}: this backend has no separate store process to stop")

    def start_store(self) -> None:
        raise NotImplementedError(f"{self.name}: this backend has no separate store process to start")


class Clouds(ABC):
    primary: Cloud
    secondary: Cloud

    @abstractmethod
    def start(self) -> None: ...
    @abstractmethod
    def stop(self) -> None: ...

    def pids(self) -> list[int]:
        return self.primary.pids() + self.secondary.pids()

    @property
    def replicating(self) -> bool:
        return True

    def __enter__(self) -> Clouds:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalServerCloud(Cloud):
    """One ``python -m handlers.local`` process (SQLite) on its own loopback address."""

    def __init__(self, name: str, address: str, port: int, db: Path) -> None:
        self.name, self.address, self.port = name, address, port
        env = {"OVERCAST_PROVIDER": name, "OVERCAST_REGION": "local", "OVERCAST_LOG_LEVEL": "WARNING"}
        argv = [sys.executable, "-m", "handlers.local", "--host", address, "--port", str(port), "--db", str(db)]
        self.server = ServerProcess(f"drill-{name}", argv, host=address, port=port, env=env, startup_timeout=30)
        self._seen: set[int] = set()

    def start(self) -> None:
        self.server.start()
        if self.server.pid:
            self._seen.add(self.server.pid)

    def stop(self) -> None:
        self.server.stop()

    def pids(self) -> list[int]:
        return sorted(self._seen)

    def freeze(self) -> None:
        self.server.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.server.signal(signal.SIGCONT)

    def kill(self) -> None:
        self.server.signal(signal.SIGKILL)
        if self.server.process is not None:
            self.server.process.wait(5)

    def restart(self) -> None:
        self.server.stop()
        self.start()


class LocalServerClouds(Clouds):
    primary: LocalServerCloud
    secondary: LocalServerCloud

    def __init__(self, names: tuple[str, str], addresses: tuple[str, str], port: int, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.primary = LocalServerCloud(names[0], addresses[0], port, state_dir / f"{names[0]}.sqlite")
        self.secondary = LocalServerCloud(names[1], addresses[1], port, state_dir / f"{names[1]}.sqlite")

    @property
    def replicating(self) -> bool:
        return False

    def start(self) -> None:
        try:
            self.primary.start()
            self.secondary.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for cloud in (self.secondary, self.primary):
            cloud.stop()
