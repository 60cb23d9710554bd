#!/usr/bin/env bash
# Runs examples/echo_server on every Linux backend and checks that a real TCP client (bash's
# /dev/tcp) gets its lines echoed back; that a bad argument is one clear line and exit 2; and
# that SIGINT (Ctrl-C) stops a server with clients connected cleanly.
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

# A bad argument: one line saying what is wrong (no Rust Debug output), the usage, exit 2.
for bad in not-an-address --bogus; do
  status=0
  err=$("$bin" "$bad" 2>&1 >/dev/null) || status=$?
  [ "$status" -eq 2 ] || { echo "echo_server $bad: exit $status, expected 2"; exit 1; }
  case "$err" in
    *"Os {"*|*"Error {"*|*panicked*) echo "echo_server $bad: unclear error: $err"; exit 1 ;;
  esac
  echo "$err" | grep -q "^usage:" || { echo "echo_server $bad: no usage line: $err"; exit 1; }
done
echo "echo_server: bad arguments refused clearly"

# Ctrl-C with a client connected: a clean exit 0 and a one-line summary.
log=$(mktemp)
timeout 30 "$bin" "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
for _ in $(seq 50); do grep -q "echo server on" "$log" && break; sleep 0.1; done
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'still here\n' >&3
read -r -t 5 echoed <&3
kill -INT "$server"
status=0
wait "$server" || status=$?
exec 3<&- 3>&-
[ "$echoed" = "still here" ] && [ "$status" -eq 0 ] && grep -q "^stopped:" "$log" \
  || { cat "$log"; echo "echo_server did not stop cleanly on SIGINT (exit $status)"; exit 1; }
rm -f "$log"
echo "echo_server: SIGINT with a client connected: clean exit"
