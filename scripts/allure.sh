#!/usr/bin/env bash
# Runs the project-local Allure 2 command line (installed into .tools/ by scripts/setup.sh), e.g.
#   scripts/allure.sh generate allure-results --clean -o allure-report
#   scripts/allure.sh open allure-report
# Falls back to an `allure` on PATH. Exits 127 with one clear line when neither exists.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -x "$here/.tools/node_modules/.bin/allure" ]; then
  exec "$here/.tools/node_modules/.bin/allure" "$@"
elif command -v allure >/dev/null 2>&1; then
  exec allure "$@"
fi
echo "scripts/allure.sh: no Allure command line in $here/.tools/ or on PATH; run scripts/setup.sh" >&2
exit 127
