"""Authentication: what it adds to each handler's import (cold start) and to a request.

- Import: ``python -X importtime -c "import handlers.<p>"`` in fresh interpreters, the providers
  interleaved, 11 rounds; the auth modules' own time (core.auth, adapters.jwt_auth: everything
  they import — core.settings, core.ports, core.logs, urllib — the handler imports anyway)
  against the handler's total, medians. PyJWT and cryptography are not on this path at all:
  they load on the first verification.
- Verify: JwtAuthorizer.authenticate on a token whose issuer's JWKS is already cached (test issuer
  on 127.0.0.1), RS256 and ES256, median of 2,000 calls; and the first verification in a fresh
  interpreter (imports PyJWT + cryptography, fetches discovery + JWKS).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.report import Section
from emulators.base import REPO_ROOT

HANDLERS = ("handlers.aws", "handlers.azure", "handlers.gcp", "handlers.openwhisk", "handlers.local")
AUTH_MODULES = ("core.auth", "adapters.jwt_auth")
ROUNDS = 11


def _importtime(module: str) -> tuple[float, float]:
    """(total µs of importing ``module``, µs of the auth modules within it) in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    total = auth = 0.0
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        try:
            own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        except ValueError:
            continue
        if name == module:
            total = float(cumulative)
        if name in AUTH_MODULES:
            auth += float(own)
    return total, auth


def run(report: Section) -> None:
    report.method(
        f"import: -X importtime, fresh interpreters, {len(HANDLERS)} handlers interleaved, {ROUNDS} rounds, "
        "medians; ratio = handler import / (handler import - auth modules' own time). "
        "verify: cached JWKS, median of 2,000 calls."
    )
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in HANDLERS}
    for module in HANDLERS:  # warm the file cache
        _importtime(module)
    for _ in range(ROUNDS):
        for module in HANDLERS:
            samples[module].append(_importtime(module))
    for module, runs in samples.items():
        total = statistics.median(t for t, _ in runs)
        without = statistics.median(t - a for t, a in runs)
        report.figure(f"import {module} with auth", round(total / 1000, 1), "ms")
        report.figure(f"import {module} auth modules", round(statistics.median(a for _, a in runs) / 1000, 2), "ms")
        report.figure(f"import {module} ratio with/without auth", round(total / without, 3), "x", "<= 1.05")
    _verify(report)


def _verify(report: Section) -> None:
    from adapters.jwt_auth import JwtAuthorizer
    from core.settings import Settings
    from emulators.oidc import OidcIssuer

    with OidcIssuer() as issuer:
        settings = Settings.from_env(issuer.env("bench")).auth
        authorizer = JwtAuthorizer(settings)
        for algorithm in ("RS256", "ES256"):
            header = "Bearer " + issuer.token("ada", "bench", algorithm=algorithm)
            authorizer.authenticate(header)  # JWKS fetched and cached
            times = []
            for _ in range(2000):
                started = time.perf_counter()
                authorizer.authenticate(header)
                times.append(time.perf_counter() - started)
            report.figure(
                f"verify {algorithm} token, cached JWKS (p50)", round(statistics.median(times) * 1e6, 1), "µs"
            )
        code = (
            "import time; t = time.perf_counter()\n"
            "from adapters.jwt_auth import JwtAuthorizer\nfrom core.settings import Settings\n"
            f"a = JwtAuthorizer(Settings.from_env({issuer.env('bench')!r}).auth)\n"
            f"a.authenticate({('Bearer ' + issuer.token('ada', 'bench'))!r})\n"
            "print(time.perf_counter() - t)"
        )
        firsts = [
            float(
                subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(5)
        ]
        report.figure(
            "first verification in a fresh process (imports PyJWT + cryptography, fetches JWKS)",
            round(statistics.median(firsts) * 1000, 1),
            "ms",
        )
