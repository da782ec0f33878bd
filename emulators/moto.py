"""moto server: DynamoDB (with Streams), Route 53 and the rest of moto's AWS, on 127.0.0.1.

    server = MotoServer().start()        # python -m moto.server in its own process group
    client = server.client("dynamodb")   # boto3 client with dummy credentials
    server.reset()                       # POST /moto-api/reset: wipes every service's state
    server.stop()

``python -m emulators.moto [--port P]`` runs one in the foreground (prints ``ready <url>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

from emulators.base import LOOPBACK, ServerProcess, free_port, serve_until_signal

#: moto accepts any credentials; these keep boto3 from looking for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
EMULATOR_REGION = "us-east-1"
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": EMULATOR_REGION,
    "AWS_REGION": EMULATOR_REGION,
}


class MotoServer:
    name = "moto"

    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.process = ServerProcess(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(self.port)],
            host=host,
            port=self.port,
            ready=self._answers,
            startup_timeout=60,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        return self.url

    def start(self) -> MotoServer:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3

        options = {"region_name": EMULATOR_REGION, "endpoint_url": self.url, **EMULATOR_CREDENTIALS, **kwargs}
        return boto3.session.Session().client(service, **options)

    def _answers(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1) as response:
            json.loads(response.read() or b"{}")
            return True

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.moto", description="Run moto server on loopback.")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    with MotoServer(args.host, args.port or None) as server:
        return serve_until_signal(server.process, f"ready {server.url}")


if __name__ == "__main__":
    sys.exit(main())
