"""A test OIDC issuer on 127.0.0.1: discovery document, JWKS, and tokens signed with its keys.

    issuer = OidcIssuer().start()          # a thread in this process, on a free loopback port
    token = issuer.token("ada", scope="overcast:write")
    issuer.env("overcast-api")             # the OVERCAST_AUTH_* settings that trust it
    issuer.rotate()                        # a new signing key (new kid); the old one is dropped
    issuer.stop()

Keys are generated when it starts (an RSA key for RS256 and a P-256 key for ES256); nothing is
stored. It stands in for Auth0 or any OIDC provider in tests and in the failover drill, whose
clouds run in other processes and fetch the keys over HTTP like a deployed function would.

``python -m emulators.oidc [--port P]`` runs one in the foreground and prints a token.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emulators.base import LOOPBACK

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"


class SigningKey:
    def __init__(self, algorithm: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.algorithm = algorithm
        self.kid = f"{algorithm.lower()}-{uuid.uuid4().hex[:12]}"
        if algorithm.startswith("RS"):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported test algorithm {algorithm}")

    def jwk(self) -> dict[str, Any]:
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        family = RSAAlgorithm if self.algorithm.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = json.loads(family.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


class OidcIssuer:
    def __init__(self, host: str = LOOPBACK, port: int = 0, algorithms: tuple[str, ...] = ("RS256", "ES256")) -> None:
        if not host.startswith("127."):
            raise ValueError("the test issuer binds loopback addresses only")
        self.keys = [SigningKey(a) for a in algorithms]
        self.jwks_requests = 0
        self.discovery_requests = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == DISCOVERY_PATH:
                    with issuer._lock:
                        issuer.discovery_requests += 1
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + JWKS_PATH,
                        "id_token_signing_alg_values_supported": [k.algorithm for k in issuer.keys],
                    }
                elif self.path == JWKS_PATH:
                    with issuer._lock:
                        issuer.jwks_requests += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The issuer identifier (``iss``), which is also the discovery base URL."""
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> OidcIssuer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def rotate(self, algorithm: str = "RS256") -> SigningKey:
        """Replace the key of ``algorithm`` with a new one (new kid), as a provider rotates keys."""
        fresh = SigningKey(algorithm)
        self.keys = [k for k in self.keys if k.algorithm != algorithm] + [fresh]
        return fresh

    def key(self, algorithm: str = "RS256") -> SigningKey:
        return next(k for k in self.keys if k.algorithm == algorithm)

    def env(self, audience: str, **extra: str) -> dict[str, str]:
        """The settings of an API that trusts this issuer."""
        return {
            "OVERCAST_AUTH_ISSUER": self.url,
            "OVERCAST_AUTH_AUDIENCE": audience,
            "OVERCAST_AUTH_DISABLED": "false",
            **extra,
        }

    def claims(self, subject: str, audience: str, *, lifetime_s: int = 300, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.url,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            **extra,
        }

    def token(
        self,
        subject: str,
        audience: str = "overcast-api",
        *,
        algorithm: str = "RS256",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with the issuer's current key; ``claims`` override or add claims."""
        return self.sign(self.claims(subject, audience, **claims), algorithm=algorithm, headers=headers)

    def token_source(self, audience: str, lifetime_s: int = 900) -> Callable[[str], str]:
        """``subject → "Bearer <token>"``, a token per subject re-signed a minute before it expires
        (for load generators: signing per request would cost more than the request)."""
        cache: dict[str, tuple[str, float]] = {}
        lock = threading.Lock()

        def authorization(subject: str) -> str:
            with lock:
                token, expires = cache.get(subject, ("", 0.0))
                if expires - time.time() < 60:
                    token = self.token(subject, audience, lifetime_s=lifetime_s)
                    cache[subject] = (token, time.time() + lifetime_s)
            return "Bearer " + token

        return authorization

    def sign(self, payload: dict[str, Any], *, algorithm: str = "RS256", headers: dict[str, Any] | None = None) -> str:
        import jwt

        key = self.key(algorithm)
        return jwt.encode(payload, key.private, algorithm=algorithm, headers={"kid": key.kid, **(headers or {})})


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = argparse.ArgumentParser(prog="python -m emulators.oidc", description="A test OIDC issuer on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--audience", default="overcast-api")
    parser.add_argument("--subject", default="ada")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with OidcIssuer(port=args.port) as issuer:
        print(f"ready {issuer.url}", flush=True)
        print(f"OVERCAST_AUTH_ISSUER={issuer.url} OVERCAST_AUTH_AUDIENCE={args.audience}", flush=True)
        print(f"token for {args.subject} (5 min): {issuer.token(args.subject, args.audience)}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
