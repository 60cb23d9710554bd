#!/usr/bin/env bash
# Runs the Port-drop test (1000 operations in flight on every backend) under valgrind's
# memcheck: any definitely or indirectly lost block, or any memory error, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo test -p ringport --test behaviour --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*behaviour[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "behaviour test binary not found"; exit 1; }
valgrind --quiet --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite,indirect \
  --error-exitcode=9 "$bin" drop_with_1000_ops_in_flight --test-threads=1
