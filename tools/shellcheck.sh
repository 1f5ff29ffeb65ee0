#!/usr/bin/env bash
# Runs shellcheck over every shell script of the project (installs it if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "installing shellcheck" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
mapfile -t scripts < <(
  { ls tools/*.sh tools/stack/*.sh .ci/run tools/just 2>/dev/null; ls devstack/plugin.sh devstack/settings 2>/dev/null; } | sort -u
)
shellcheck -x -s bash "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
