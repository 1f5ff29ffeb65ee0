#!/usr/bin/env bash
# Renders every kustomization under deploy/kubernetes with `kubectl
# kustomize` (offline), validates each rendering against the Kubernetes
# schemas with kubernetes-validate --strict (unknown fields are errors), and
# checks each overlay with tools/kubernetes/check.py (hardening, probes and
# scrape annotations on the internal listener, secrets as files, and
# `aetos-api check-config` on the configuration it mounts).
#
#   tools/kubernetes-test.sh AETOS_API_BINARY
#
# The tools come pinned from tools/requirements-kubernetes.txt into their
# own virtualenv ($AETOS_TOOLS_DIR, default <repo>/.tools), installed once
# per pin. Renderings are left in $AETOS_TOOLS_DIR/kubernetes/ to read.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$(realpath "${1:?usage: tools/kubernetes-test.sh AETOS_API_BINARY}")
[[ -x $binary ]] || { echo "kubernetes-test: $binary is not an executable" >&2; exit 1; }
tools=${AETOS_TOOLS_DIR:-$root/.tools}
venv=$tools/kubernetes-venv
req=$root/tools/requirements-kubernetes.txt
stamp=$venv/.requirements
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "kubernetes-test: installing $(grep -cv '^#' "$req") pinned tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
out=$tools/kubernetes
rm -rf "$out"
mkdir -p "$out"
cd "$root/deploy/kubernetes"
mapfile -t dirs < <(find base overlays -name kustomization.yaml -printf '%h\n' | sort)
passed=0
failed=0
for dir in "${dirs[@]}"; do
  rendered=$out/${dir//\//_}.yaml
  ok=true
  if ! "$venv/bin/kubectl" kustomize "$dir" >"$rendered"; then
    echo "FAIL $dir: kubectl kustomize failed" >&2
    ok=false
  elif ! "$venv/bin/kubernetes-validate" --strict --quiet "$rendered"; then
    echo "FAIL $dir: kubernetes-validate" >&2
    ok=false
  elif [[ $dir == overlays/* ]] && ! "$venv/bin/python" "$root/tools/kubernetes/check.py" "$rendered" "$binary"; then
    echo "FAIL $dir: check.py" >&2
    ok=false
  fi
  if $ok; then
    echo "ok   $dir ($(grep -c '^kind:' "$rendered") objects)"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "kubernetes: $passed passed, $failed failed"
((failed == 0 && passed > 0))
