"""The nemesis workload: seeded clients on several clouds, a nemesis, and the history they leave.

One loop drives everything from one ``random.Random(seed)``, so a seed names the same schedule
of operations and faults every time (the timings of real processes still vary). Each step either
lets the nemesis act or runs one client operation on a cloud the seed picks:

* a post of a unique value (no Idempotency-Key);
* a post under an Idempotency-Key, retried on the other cloud(s) — after an error, and sometimes
  after a success (the client never saw the answer) — as a client failing over would;
* a delete of an acknowledged unique post, on any cloud, sometimes on two clouds in a row.

After every acknowledged write a watcher polls the other clouds until the write shows there (its
first visible read is logged: that is the write's convergence time). At the end the nemesis
lifts every fault, the run heals (one anti-entropy pass from each cloud), logs ``healed``, and
takes a snapshot of every store for the checker (failover/nemesis/checker.py).

The clouds are anything with ``request(method, path, body, headers, timeout) -> (status, body)``
(runtime.mesh.Cloud, or an in-process app in tests); the nemesis is anything with ``act(rng)``
and ``lift()``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

CHANNELS = ("n1", "n2")  # a run on a shared mesh names its own (the checker reads only those)


class Target(Protocol):
    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]: ...


class Nemesis(Protocol):
    def act(self, rng: random.Random) -> dict[str, Any]:
        """Inject or lift one fault the seed picks; returns what it did (logged in the history)."""
        ...

    def lift(self) -> list[dict[str, Any]]:
        """Lift every fault still in place."""
        ...


class History:
    """Events in order, each stamped with its index and seconds since the run began."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.events: list[dict[str, Any]] = []
        self._clock = clock
        self._start = clock()

    def add(self, **event: Any) -> dict[str, Any]:
        entry = {"index": len(self.events), "time": round(self._clock() - self._start, 4), **event}
        self.events.append(entry)
        return entry

    def write(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as out:
            for event in self.events:
                out.write(json.dumps(event, sort_keys=True) + "\n")


@dataclass
class _Watch:
    ack: dict[str, Any]
    cloud: str


@dataclass
class Workload:
    clouds: Mapping[str, Target]
    nemesis: Nemesis
    heal: Callable[[], None]
    snapshot: Callable[[], dict[str, list[dict[str, Any]]]]
    seed: int = 0
    steps: int = 200
    clients: int = 4
    nemesis_share: float = 0.1
    #: Called between steps (the in-process network delivers here; a real mesh just waits).
    between: Callable[[], None] = lambda: None
    #: subject → Authorization header for writes (None: auth is disabled on the clouds).
    authorization: Callable[[str], str] | None = None
    timeout: float = 3.0
    watch_polls_per_step: int = 4
    watch_timeout: float = 0.5
    channels: tuple[str, ...] = CHANNELS
    history: History = field(default_factory=History)

    def run(self) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        rng = random.Random(self.seed)
        names = sorted(self.clouds)
        self._watches: list[_Watch] = []
        self._posted: list[dict[str, Any]] = []  # acknowledged unique posts not yet deleted
        try:
            for step in range(self.steps):
                if rng.random() < self.nemesis_share:
                    self.history.add(process="nemesis", type="info", **self.nemesis.act(rng))
                else:
                    self._operation(rng, f"c{rng.randrange(self.clients)}", names, step)
                self._poll_watches()
                self.between()
        finally:
            for lifted in self.nemesis.lift():
                self.history.add(process="nemesis", type="info", **lifted)
        self.heal()
        self._poll_watches(everything=True)
        self.history.add(process="run", type="info", f="healed")
        return self.history.events, self.snapshot()

    # -- operations ----------------------------------------------------------------------------

    def _operation(self, rng: random.Random, process: str, names: list[str], step: int) -> None:
        roll = rng.random()
        channel = rng.choice(self.channels)
        if roll < 0.45 or not self._posted:
            ack = self._post(process, rng.choice(names), channel, None, f"{process}-{step}")
            if ack is not None:
                self._posted.append(ack)
        elif roll < 0.75:
            key, value = f"key-{step}", f"{process}-key-{step}"
            order = rng.sample(names, len(names))
            for attempt, cloud in enumerate(order + order[:1]):
                ack = self._post(process, cloud, channel, key, value)
                if ack is not None and (attempt > 0 or rng.random() < 0.6):
                    break  # done; otherwise the client never saw the answer and retries elsewhere
        else:
            target = self._posted.pop(rng.randrange(len(self._posted)))
            clouds = rng.sample(names, 2 if rng.random() < 0.3 and len(names) > 1 else 1)
            for cloud in clouds:
                self._delete(process, cloud, target["channel"], target["id"])

    def _headers(self, key: str | None) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {"idempotency-key": key} if key else {}
        if self.authorization is not None:
            headers["authorization"] = self.authorization("nemesis")
            return headers, {}
        return headers, {"author": "nemesis"}

    def _post(self, process: str, cloud: str, channel: str, key: str | None, value: str) -> dict[str, Any] | None:
        op = {"process": process, "f": "post", "cloud": cloud, "channel": channel, "key": key, "value": value}
        self.history.add(type="invoke", **op)
        headers, author = self._headers(key)
        outcome, status, body = self._call(
            cloud, "POST", f"/channels/{channel}/messages", {**author, "text": value}, headers
        )
        if outcome == "ok" and isinstance(body, dict):
            ack = self.history.add(type="ok", status=status, id=body["id"], version=body["version"], **op)
            self._watch(ack)
            return ack
        self.history.add(type=outcome, status=status, error=_error(body), **op)
        return None

    def _delete(self, process: str, cloud: str, channel: str, message_id: str) -> None:
        op = {"process": process, "f": "delete", "cloud": cloud, "channel": channel, "id": message_id}
        self.history.add(type="invoke", **op)
        headers, _ = self._headers(None)
        outcome, status, body = self._call(cloud, "DELETE", f"/channels/{channel}/messages/{message_id}", None, headers)
        if outcome == "ok":
            self._watch(self.history.add(type="ok", status=status, **op))
        else:
            self.history.add(type=outcome, status=status, error=_error(body), **op)

    def _call(
        self, cloud: str, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[str, int | None, Any]:
        """(ok | fail | info, status, body): fail is a refusal before any write; info may have written."""
        try:
            status, answer = self.clouds[cloud].request(method, path, body, headers, timeout=self.timeout)
        except Exception as exc:  # connection refused, reset, timeout: indeterminate
            return "info", None, {"error": {"code": type(exc).__name__}}
        if status in (200, 201, 204):
            return "ok", status, answer
        if 400 <= status < 500:
            return "fail", status, answer
        return "info", status, answer

    # -- convergence ---------------------------------------------------------------------------

    def _watch(self, ack: dict[str, Any]) -> None:
        self._watches.extend(_Watch(ack, name) for name in sorted(self.clouds) if name != ack["cloud"])

    def _poll_watches(self, everything: bool = False) -> None:
        pending = self._watches if everything else self._watches[: self.watch_polls_per_step]
        done = []
        unreachable: set[str] = set()  # one timeout per cloud per poll, not one per watch
        for watch in pending:
            if watch.cloud in unreachable:
                continue
            visible = self._visible(watch)
            if visible is None:
                unreachable.add(watch.cloud)
            elif visible:
                ack = watch.ack
                self.history.add(
                    process="watcher", type="ok", f="read", cloud=watch.cloud, watch=ack["index"], visible=True
                )
                done.append(watch)
        kept = [w for w in self._watches if w not in done]
        # Round robin: the next poll starts with the watches this one did not reach.
        self._watches = kept[len(pending) - len(done) :] + kept[: len(pending) - len(done)]

    def _visible(self, watch: _Watch) -> bool | None:
        """Whether the watched write shows on the cloud (None: the cloud did not answer)."""
        ack = watch.ack
        path = f"/channels/{ack['channel']}/messages/{ack['id']}"
        try:
            status, body = self.clouds[watch.cloud].request("GET", path, None, {}, timeout=self.watch_timeout)
        except Exception:
            return None
        if status >= 500:
            return None
        if ack["f"] == "delete":
            return status == 404
        return status == 200 and isinstance(body, dict) and str(body.get("version", "")) >= ack["version"]


def _error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return None
