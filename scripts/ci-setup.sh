#!/usr/bin/env bash
# Installs what CI and the checks need on a fresh machine (idempotent).
set -euo pipefail

need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
# `ringport bench --chart` draws its text with DejaVu Sans (tests/bench.rs draws a chart).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
cargo --version
