#!/usr/bin/env bash
# Leak and memory checks of the paths that free kernel-shared memory:
#  1. valgrind memcheck on the Port-drop test (1000 operations in flight, every backend);
#  2. LeakSanitizer (nightly, -Zsanitizer=leak) on the same test and on the real binary's
#     SIGTERM-under-load test. valgrind cannot run the multi-threaded server: it holds its
#     lock across a blocking io_uring_enter and starves the other threads.
# Any definitely/indirectly lost block or memory error fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(cargo test -p ringport --test behaviour --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*behaviour[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "behaviour test binary not found"; exit 1; }
echo "valgrind: Port drop with 1000 operations in flight"
valgrind --quiet --leak-check=full --show-possibly-lost=no \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
  "$bin" drop_with_1000_ops_in_flight --test-threads=1

echo "LeakSanitizer: Port drop, and the server binary stopped by SIGTERM under load"
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=leak"
cargo +nightly test --target "$host" --target-dir target/lsan -p ringport --test behaviour \
  -- drop_with_1000_ops_in_flight
cargo +nightly test --target "$host" --target-dir target/lsan -p ringport-cli --test cli \
  -- sigterm_under_load_ends_in_a_clean_exit
