#!/usr/bin/env bash
# Install the system services the test suite and the embedded dev mode run as local
# processes: redis-server and PostgreSQL 15, and for tests pgbouncer and chromium.
# Idempotent and fast when already present; never starts a service (tests start private
# instances on free ports).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The tests of DATABASE_URL=…?pgbouncer=true run through a real one (tests/pgbouncer.py).
[[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
# Pages are tested in a real headless Chromium, which Playwright drives by its path.
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] || missing+=(postgresql-15)

if ((${#missing[@]} == 0)); then
    echo "install-deps: redis-server, PostgreSQL 15, pgbouncer and chromium already installed"
    exit 0
fi

sudo=()
if ((EUID != 0)); then
    sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
