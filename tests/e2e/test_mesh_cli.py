"""`python -m runtime.mesh up` as a user runs it: writes work with the token it prints, and are
refused without one (writes need a bearer token on every provider, so a mesh without an issuer
would answer every POST with 503)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERCAST_AUTH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.mesh", "up", "local", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: stopped as a whole below
    )


def _read_until_ready(process: subprocess.Popen[str], timeout_s: float = 60.0) -> str:
    """What the mesh printed up to its "ready" line (read on a thread: a buffered pipe and select
    do not mix)."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("ready"):
            return "".join(seen)
    raise AssertionError(f"mesh did not become ready; it printed:\n{''.join(seen)}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _post(url: str, token: str | None) -> int:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"author": "ada", "text": "Hello London"}).encode()
    request = urllib.request.Request(url + "/channels/london/messages", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_mesh_up_runs_a_test_issuer_and_prints_a_token_that_writes() -> None:
    process = _start()
    try:
        output = _read_until_ready(process)
        url = re.search(r"(http://127\.[0-9.]+:\d+)", output.split("\n", 1)[0])
        token = re.search(r"export TOKEN=(\S+)", output)
        assert url and token, output
        assert _post(url.group(1), None) == 401
        assert _post(url.group(1), token.group(1)) == 201
        assert _post(url.group(1), token.group(1)[:-4] + "AAAA") == 401
    finally:
        _stop(process)
    assert process.returncode == 0


def test_mesh_up_with_auth_disabled_says_so_and_accepts_anonymous_writes() -> None:
    process = _start("--auth", "disabled")
    try:
        output = _read_until_ready(process)
        assert "auth      disabled" in output
        url = re.search(r"(http://127\.[0-9.]+:\d+)", output.split("\n", 1)[0])
        assert url, output
        assert _post(url.group(1), None) == 201
    finally:
        _stop(process)
