#!/usr/bin/env bash
# Runs examples/echo_server on every Linux backend and checks that a real TCP client (bash's
# /dev/tcp) gets its lines echoed back.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example echo_server
bin=target/release/examples/echo_server
port=7391
for backend in uring epoll; do
  log=$(mktemp)
  RINGPORT_BACKEND=$backend timeout 30 "$bin" "127.0.0.1:$port" --once >"$log" 2>&1 &
  server=$!
  for _ in $(seq 50); do grep -q "echo server on" "$log" && break; sleep 0.1; done
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'hello ringport\nsecond line\n' >&3
  read -r -t 5 first <&3
  read -r -t 5 second <&3
  exec 3<&- 3>&-
  wait "$server"
  grep -q "($backend backend)" "$log" || { cat "$log"; echo "server did not run on $backend"; exit 1; }
  [ "$first" = "hello ringport" ] && [ "$second" = "second line" ] \
    || { cat "$log"; echo "echo mismatch on $backend: '$first' '$second'"; exit 1; }
  echo "echo_server on $backend: ok"
  rm -f "$log"
done
