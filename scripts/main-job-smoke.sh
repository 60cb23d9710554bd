#!/usr/bin/env bash
# Runs README.md's main-job command exactly as written (the first line of its first `sh` block),
# talks to the server it starts, and stops it with SIGINT: the command a newcomer runs first
# must start a server that echoes and exits cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

main_cmd=$(awk '/^```sh/{f=1;next} f&&/^```/{exit} f' README.md | grep -m1 -v '^cargo test' \
  | sed 's/[[:space:]]*#.*$//')
[ -n "$main_cmd" ] || { echo "README.md has no main-job command"; exit 1; }
addr=127.0.0.1
port=7000 # the README's server listens on 127.0.0.1:7000
echo "main job: $main_cmd"

# Build first, so the wait below times the server, not the compiler.
eval "$main_cmd --help" >/dev/null

log=$(mktemp)
# `exec`, and `cargo run` execs the binary in its place (on Unix): the PID is the server's.
bash -c "exec $main_cmd" >"$log" 2>&1 </dev/null &
server=$!
trap 'kill -KILL "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
grep -q "listening on" "$log" || { cat "$log"; echo "the main job did not start listening"; exit 1; }
comm=$(cat "/proc/$server/comm")
[ "$comm" = ringport ] || { echo "expected the ringport process, found '$comm'"; exit 1; }

exec 3<>"/dev/tcp/$addr/$port"
printf 'hello from CI\n' >&3
read -r -t 10 echoed <&3 || true
exec 3<&- 3>&-
[ "${echoed:-}" = "hello from CI" ] || { cat "$log"; echo "no echo from the main job: '${echoed:-}'"; exit 1; }

kill -INT "$server"
status=0
timeout 30 tail --pid="$server" -f /dev/null || { cat "$log"; echo "the main job did not stop on SIGINT"; exit 1; }
wait "$server" || status=$?
[ "$status" -eq 0 ] || { cat "$log"; echo "the main job exited with $status on SIGINT"; exit 1; }
grep -q "^final:" "$log" || { cat "$log"; echo "no final summary"; exit 1; }
echo "main job: started, echoed, stopped cleanly on SIGINT"
