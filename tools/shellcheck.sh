#!/usr/bin/env bash
# Runs shellcheck over every shell script of the project (installs it if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tools/deps.sh
mapfile -t scripts < <(
  { ls tools/*.sh tools/stack/*.sh .ci/run tools/just 2>/dev/null; ls devstack/plugin.sh devstack/settings devstack/tests/*.sh devstack/tests/fake-aetos-api 2>/dev/null; } | sort -u
)
shellcheck -x -s bash "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
