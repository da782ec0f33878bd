"""The faults a drill can inject into the primary, each with its restore step.

| fault      | inject                                         | restore                      |
| ---------- | ---------------------------------------------- | ---------------------------- |
| inverted   | UpdateHealthCheck Inverted=true (Route 53 API) | UpdateHealthCheck Inverted=false |
| http503    | the fault proxy in front of the primary answers 503 | the proxy forwards again |
| freeze     | SIGSTOP the primary's process group (connections hang) | SIGCONT             |
| crash      | SIGKILL the primary's process group            | start it again               |
| store-down | stop the primary's store emulator (/health/deep → 503) | start it again       |

``inverted`` is the production-safe lever (live mode uses only that one): it changes no code and
deletes nothing. The others need the local drill's process control.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol


class PrimaryControl(Protocol):
    """What a fault needs from the primary cloud's processes (see failover/clouds.py)."""

    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def kill(self) -> None: ...
    def restart(self) -> None: ...
    def stop_store(self) -> None: ...
    def start_store(self) -> None: ...


class Switch(Protocol):
    def set_failing(self, failing: bool) -> None: ...


@dataclass
class FaultContext:
    primary: PrimaryControl
    route53: Any = None
    health_check_id: str = ""
    proxy: Switch | None = None


class Fault(ABC):
    name: str = ""
    description: str = ""
    needs_proxy = False

    @abstractmethod
    def inject(self, ctx: FaultContext) -> None: ...

    @abstractmethod
    def restore(self, ctx: FaultContext) -> None: ...


def set_inverted(route53: Any, health_check_id: str, inverted: bool) -> None:
    route53.update_health_check(HealthCheckId=health_check_id, Inverted=inverted)


class InvertedHealthCheck(Fault):
    name = "inverted"
    description = "UpdateHealthCheck Inverted=true on the primary's health check (production-safe lever)"

    def inject(self, ctx: FaultContext) -> None:
        set_inverted(ctx.route53, ctx.health_check_id, True)

    def restore(self, ctx: FaultContext) -> None:
        set_inverted(ctx.route53, ctx.health_check_id, False)


class Http503(Fault):
    name = "http503"
    description = "the primary answers 503 to everything (fault proxy in front of it)"
    needs_proxy = True

    def inject(self, ctx: FaultContext) -> None:
        if ctx.proxy is None:
            raise RuntimeError("http503 needs the fault proxy in front of the primary")
        ctx.proxy.set_failing(True)

    def restore(self, ctx: FaultContext) -> None:
        if ctx.proxy is not None:
            ctx.proxy.set_failing(False)


class Freeze(Fault):
    name = "freeze"
    description = "SIGSTOP the primary's processes: connections open but nothing answers"

    def inject(self, ctx: FaultContext) -> None:
        ctx.primary.freeze()

    def restore(self, ctx: FaultContext) -> None:
        ctx.primary.thaw()


class Crash(Fault):
    name = "crash"
    description = "SIGKILL the primary's processes: connections are refused"

    def inject(self, ctx: FaultContext) -> None:
        ctx.primary.kill()

    def restore(self, ctx: FaultContext) -> None:
        ctx.primary.restart()


class StoreDown(Fault):
    name = "store-down"
    description = "stop the primary's store: the API runs but /health/deep answers 503"

    def inject(self, ctx: FaultContext) -> None:
        ctx.primary.stop_store()

    def restore(self, ctx: FaultContext) -> None:
        ctx.primary.start_store()


FAULTS: dict[str, type[Fault]] = {f.name: f for f in (InvertedHealthCheck, Http503, Freeze, Crash, StoreDown)}


def get(name: str) -> Fault:
    try:
        return FAULTS[name]()
    except KeyError:
        raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}") from None
