"""The two clouds a drill runs against, and the process controls the faults need.

``Cloud`` is the drill's view of one cloud: where it listens, which processes it owns (to prove
they are all gone afterwards), and the controls the faults use. Backends:

- ``mesh`` (the default when runtime/mesh.py is present): the AWS stack and the Azure stack on the
  local runtime with their emulators, wired as replication peers (see failover/mesh_clouds.py).
- ``local``: two ``handlers.local`` SQLite servers without replication, for developing the
  DNS/health/load parts alone (the loss check fails there by design: nothing replicates).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import signal
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

    def verify_stores(self) -> dict[str, Any] | None:
        """Compare the clouds' stores directly (below the API), when the backend can."""
        return None

    def replication_counts(self) -> dict[str, Any] | None:
        """What streams delivered and what anti-entropy repaired, when the backend replicates."""
        return None

    def __enter__(self) -> Clouds:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replicating_runtime_available() -> bool:
    return importlib.util.find_spec("runtime.local") is not None


class LocalServerCloud(Cloud):
    """One local SQLite cloud on its own loopback address.

    With ``runtime.local`` (the local provider as a replication peer) it replicates to ``peers``
    and restarts deliver from the beginning (re-delivery is harmless, and a crash must not lose
    what was not yet pushed); without it, a plain ``handlers.local`` server.
    """

    def __init__(
        self,
        name: str,
        address: str,
        port: int,
        db: Path,
        peers: list[dict[str, str]] | None = None,
        secret: str = "",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.name, self.address, self.port = name, address, port
        env = {
            "OVERCAST_PROVIDER": name,
            "OVERCAST_REGION": "local",
            "OVERCAST_ORIGIN": name,
            "OVERCAST_LOG_LEVEL": "WARNING",
            **(settings or {}),  # e.g. the OVERCAST_AUTH_* of the drill's test issuer
        }
        if peers is not None:
            env.update(OVERCAST_PEERS=json.dumps(peers), OVERCAST_REPLICATION_SECRET=secret)
            argv = [sys.executable, "-m", "runtime.local", "--host", address, "--port", str(port), "--db", str(db)]
            argv += ["--from-beginning", "--anti-entropy-every-s", "5"]
        else:
            argv = [sys.executable, "-m", "handlers.local", "--host", address, "--port", str(port), "--db", str(db)]
        self.server = ServerProcess(f"drill-{name}", argv, host=address, port=port, env=env, startup_timeout=30)
        self._seen: set[int] = set()
        self.store_down = False

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

    def stop_store(self) -> None:
        # runtime.local switches its store to "unavailable" on SIGUSR1 (SQLite has no process).
        if not self.replicating:
            super().stop_store()
        self.server.signal(signal.SIGUSR1)

    def start_store(self) -> None:
        if not self.replicating:
            super().start_store()
        self.server.signal(signal.SIGUSR2)

    @property
    def replicating(self) -> bool:
        return "runtime.local" in self.server.argv


class LocalServerClouds(Clouds):
    """Two local SQLite clouds (runtime.local peers when available, else handlers.local)."""

    primary: LocalServerCloud
    secondary: LocalServerCloud

    def __init__(
        self,
        names: tuple[str, str],
        addresses: tuple[str, str],
        port: int,
        state_dir: Path,
        replicate: bool | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        for stale in state_dir.glob("*.sqlite*"):  # every drill starts from empty stores
            stale.unlink()
        replicate = replicating_runtime_available() if replicate is None else replicate
        secret = secrets.token_hex(16)

        def peers(other: int) -> list[dict[str, str]] | None:
            return [{"name": names[other], "url": f"http://{addresses[other]}:{port}"}] if replicate else None

        self.primary = LocalServerCloud(
            names[0], addresses[0], port, state_dir / f"{names[0]}.sqlite", peers(1), secret, settings
        )
        self.secondary = LocalServerCloud(
            names[1], addresses[1], port, state_dir / f"{names[1]}.sqlite", peers(0), secret, settings
        )

    @property
    def replicating(self) -> bool:
        return self.primary.replicating

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
