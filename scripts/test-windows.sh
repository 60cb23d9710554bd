#!/usr/bin/env bash
# Builds ringport and the ringport CLI for x86_64-pc-windows-gnu and, under Wine: runs the lib
# unit tests, the behaviour suite (tests/behaviour.rs), the server framework's tests
# (tests/server.rs), push and the chat example (tests/push.rs, tests/chat.rs) on the IOCP
# backend, and the CLI's tests; then a smoke test of the real binary: `ringport.exe echo-server`, `ringport.exe echo-client` with piped lines, and a Ctrl-C
# (SIGINT, which Wine delivers as CTRL_C_EVENT) that must end the server cleanly.
#
# On a fresh Debian 12 machine it first installs what it needs: Debian's rustc-web (whose std
# sources let cargo's -Zbuild-std build std for Windows), the mingw-w64 linker and Wine. It is
# idempotent; a second run only rebuilds what changed. Extra arguments go to the test binaries
# (e.g. `scripts/test-windows.sh multishot` runs the tests whose names contain "multishot").
#
# Everything it makes stays under target/windows/: the Windows build (its own target dir, so it
# never fights the host build), the ProcessPrng shim DLL and a private Wine prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/target/windows"
mkdir -p "$out"

step() { printf -- '--- %s\n' "$*"; }

# 1. Packages (apt-get only when something is missing).
packages=(rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64 wine wine64)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# 2. Debian's toolchain (cargo, rustc, clippy), not rustup's proxies, which come first on PATH.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
cargo=/usr/bin/cargo
target=x86_64-pc-windows-gnu

# 3. The ProcessPrng shim: Rust's std imports it from bcryptprimitives.dll, which Wine 8 lacks.
dll_dir="$out/wine-dlls"
dll="$dll_dir/bcryptprimitives.dll"
src=scripts/wine/bcryptprimitives.c
def=scripts/wine/bcryptprimitives.def
if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ] || [ "$def" -nt "$dll" ]; then
  step "building the ProcessPrng shim"
  mkdir -p "$dll_dir"
  x86_64-w64-mingw32-gcc -O2 -shared -o "$dll" "$src" "$def" -ladvapi32
fi

# 4. A private, headless Wine prefix.
export WINEPREFIX="$out/wineprefix" WINEDEBUG=-all WINEARCH=win64
# Wine maps drive Z: to /, so the shim's directory is on the DLL search path as Z:\...
export WINEPATH="Z:${dll_dir//\//\\}"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  step "creating the Wine prefix"
  # No Mono/Gecko install prompts: the tests need neither.
  WINEDLLOVERRIDES="mscoree=;mshtml=" DISPLAY="" wineboot --init >/dev/null 2>&1
  wineserver -w
fi

# 5. Build and run. std is built for Windows from rust-web-src (-Zbuild-std).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
build=(-j2 -Zbuild-std=std,panic_abort --target "$target" --target-dir "$out")
step "cargo clippy --target $target"
"$cargo" clippy "${build[@]}" --workspace --all-targets -- -D warnings
step "cargo test --target $target (runner: wine)"
# tests/chat.rs runs the chat example as its own process: build it first.
"$cargo" build "${build[@]}" -p ringport --example chat
"$cargo" test "${build[@]}" -p ringport --lib --test behaviour --test server --test push --test chat -- "$@"
"$cargo" test "${build[@]}" -p ringport-cli -- "$@"

# 6. Smoke test of the real binary: echo-server and echo-client, each under Wine, then Ctrl-C.
step "smoke test: ringport.exe echo-server / echo-client under Wine"
"$cargo" build "${build[@]}" -p ringport-cli
exe="$out/$target/debug/ringport.exe"
log="$out/smoke-server.log"
wine "$exe" echo-server --addr 127.0.0.1:0 --codec line --quiet >"$log" 2>&1 &
server=$!
trap 'kill -9 "$server" 2>/dev/null || true' EXIT # never leave it running
fail() {
  echo "smoke test: $*"
  echo "--- server output:"
  cat "$log"
  kill -9 "$server" 2>/dev/null || true
  exit 1
}
addr=""
for _ in $(seq 300); do
  addr=$(sed -n 's/^ringport echo-server listening on \([0-9.]*:[0-9]*\) .*/\1/p' "$log")
  [ -n "$addr" ] && break
  kill -0 "$server" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
done
[ -n "$addr" ] || fail "the server did not start listening within 30 s"
grep -q "(backend iocp," "$log" || fail "the server is not on the IOCP backend"
lines=$'hello from wine\nsecond line, with spaces\n\nlast line'
echoed=$(printf '%s\n' "$lines" | timeout 60 wine "$exe" echo-client --addr "$addr" --codec line) \
  || fail "echo-client exited with $?"
[ "$echoed" = "$lines" ] || fail "echo mismatch: got '$echoed'"
echo "echo-client: every line came back, exit 0"
# Wine turns SIGINT into a CTRL_C_EVENT for the process, which runs the ctrlc handler.
kill -INT "$server"
for _ in $(seq 300); do
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null && fail "the server did not stop within 30 s of Ctrl-C"
status=0
wait "$server" || status=$?
[ "$status" -eq 0 ] || fail "the server exited with $status after Ctrl-C"
grep -q "^final: .* 1 accepted, 0 rejected, 0 reset before accept, 1 closed" "$log" || fail "no clean final summary"
echo "echo-server: stopped by Ctrl-C, exit 0, final summary printed"
