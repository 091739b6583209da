#!/usr/bin/env bash
# The whole test suite: lint, types, unit tests, and kernel tests in lab namespaces (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh needs root (kernel tests make network namespaces)" >&2; exit 1; }
unset NODE_EXTRA_CA_CERTS
./scripts/setup.sh
echo "==> lint and types"
npm run --silent lint
npm run --silent typecheck
echo "==> tests"
# unit tests (src/**) and kernel tests (test/kernel/**) in one run, so one summary counts them all
shopt -s globstar nullglob
files=(src/**/*.test.ts test/**/*.test.ts)
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
