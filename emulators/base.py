"""Start a server process, wait until it answers, and always stop it (and only it).

Each server runs in its own process group, so stopping it also stops anything it spawned (a
Java child of a wrapper script) without touching any other process on the machine. Processes
still running at interpreter exit are stopped by an ``atexit`` hook, so a failed test run does
not leave servers behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = REPO_ROOT / ".run" / "logs"
_running: set[ServerProcess] = set()


class ServerStartError(RuntimeError):
    pass


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        host: str = LOOPBACK,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        ready: Callable[[], bool] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"{name}: local servers bind loopback only, not {host}")
        self.name = name
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd or REPO_ROOT)
        self.ready = ready or (lambda: port_open(self.host, self.port))
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{port}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerProcess:
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise ServerStartError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        finally:
            log.close()
        _running.add(self)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise ServerStartError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if self.ready():
                    return self
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"{self.name} not ready after {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        """Send a signal to the server's whole process group (SIGSTOP/SIGCONT in drills)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        _running.discard(self)
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)  # a frozen server cannot handle SIGTERM
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # Children that outlived the group leader (a JVM under a wrapper) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop(timeout=3)


def serve_until_signal(process: ServerProcess, ready_line: str) -> int:
    """For an emulator's command line: print ``ready_line``, then wait for SIGINT/SIGTERM (exit 0)
    or for the server to die (exit 1, with its log tail). The caller stops the server."""
    import signal as signals
    import sys
    import threading

    stop = threading.Event()
    signals.signal(signals.SIGTERM, lambda *_: stop.set())
    signals.signal(signals.SIGINT, lambda *_: stop.set())
    print(ready_line, flush=True)
    while not stop.wait(1.0):
        if process.process is None or process.process.poll() is not None:
            print(f"{process.name} exited:\n{process.log_tail()}", file=sys.stderr)
            return 1
    return 0
