#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: system packages, the Python venv, npm packages.
# Re-running is cheap: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_install() {  # only when something is missing, and only as root
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  say "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Java runs DynamoDB Local and the Firestore emulator; Node runs the Serverless CLI and the
# Cosmos DB / CouchDB emulator servers.
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v node >/dev/null || apt_install nodejs npm
# DynamoDB Local has no bind-address option: its launcher preloads a tiny C shim, built with cc.
command -v cc >/dev/null || command -v gcc >/dev/null || apt_install gcc libc6-dev

"$PYTHON" - <<'PY' || { echo "Python 3.11+ is required (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY

stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  say "Python venv in $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # dev plus every provider's extra, read from pyproject.toml (a new provider's extra is installed
  # without editing this script or the dev extra).
  extras=$("$VENV/bin/python" -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]))')
  "$VENV/bin/python" -m pip install -q -e ".[$extras]"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi

# The vendors' validators (cfn-lint, checkov) and uv (`make requirements`) in a venv of their own:
# checkov pins many packages, which must not meet the project's. Locked with hashes.
VALIDATORS=${VALIDATORS:-.venv-validators}
stamp="$VALIDATORS/.installed-$(sha1sum requirements/validators.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  say "validators venv in $VALIDATORS"
  [ -x "$VALIDATORS/bin/python" ] || "$PYTHON" -m venv "$VALIDATORS"
  "$VALIDATORS/bin/python" -m pip install -q --upgrade pip
  "$VALIDATORS/bin/python" -m pip install -q --require-hashes -r requirements/validators.txt
  rm -f "$VALIDATORS"/.installed-* && touch "$stamp"
fi

if [ -f package-lock.json ]; then
  stamp="node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "npm ci"
    npm ci --no-audit --no-fund
    rm -f node_modules/.installed-* && touch "$stamp"
  fi
fi
say "set-up complete"
