#!/usr/bin/env bash
# Builds the documentation and the release notes with warnings as errors,
# and lints the release notes, as CI does (`tools/just docs`).
#
# Usage: tools/docs.sh            build both, lint the notes
#        tools/docs.sh install    only install the virtualenv
#
# The tools (Sphinx, reno, openstackdocstheme) are pinned in
# doc/requirements.txt and installed with uv into ${AETOS_DOCS_VENV:-.venv-docs}
# the first time and whenever the pins change (the venv records their hash).
# reno reads the notes from git history: run it in a git checkout (any
# full clone, not a shallow one; no tag is needed).
# Output: doc/build/html, releasenotes/build/html.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${AETOS_DOCS_VENV:-$root/.venv-docs}
lockfile=doc/requirements.txt

venv_ok() {
  [[ -x $venv/bin/sphinx-build && -x $venv/bin/reno && -f $venv/.aetos-docs-lock ]] &&
    [[ $(cat "$venv/.aetos-docs-lock") == "$(sha256sum "$lockfile" | cut -d' ' -f1)" ]]
}

install_venv() {
  local py=${AETOS_DOCS_PYTHON:-python3} uv_pin
  echo "docs: installing the docs virtualenv in $venv (uv, pins of $lockfile)" >&2
  if [[ ! -x $venv/bin/python ]]; then
    if ! "$py" -m venv "$venv"; then
      # Debian's python3 has no ensurepip without python3-venv.
      rm -rf "$venv"
      local -a apt=(apt-get -y -qq -o DPkg::Lock::Timeout=300)
      if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends python3-venv >/dev/null; then
        "${apt[@]}" update >/dev/null
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends python3-venv >/dev/null
      fi
      py=/usr/bin/python3
      "$py" -m venv "$venv"
    fi
  fi
  uv_pin=$(grep -E '^uv==' "$lockfile" || echo uv)
  [[ -x $venv/bin/uv ]] || "$venv/bin/python" -m pip install -q --disable-pip-version-check "$uv_pin"
  "$venv/bin/uv" pip install -q --python "$venv/bin/python" -r "$lockfile"
  sha256sum "$lockfile" | cut -d' ' -f1 >"$venv/.aetos-docs-lock"
}

venv_ok || install_venv
[[ ${1:-} == install ]] && exit 0

git rev-parse --git-dir >/dev/null 2>&1 ||
  { echo "docs: $root is not a git checkout; reno reads the release notes from git history" >&2; exit 1; }
# reno walks the history down to the first commit: a shallow clone fails
# inside it with a KeyError, so say what to do instead.
[[ $(git rev-parse --is-shallow-repository) == false ]] ||
  { echo "docs: $root is a shallow clone; reno needs the whole history (git fetch --unshallow)" >&2; exit 1; }

# -W: every warning (broken reference, page outside every toctree, bad
# markup) fails the build; --keep-going reports all of them first.
"$venv/bin/sphinx-build" -W --keep-going -q -b html doc/source doc/build/html
echo "docs: doc/build/html built without warnings"
"$venv/bin/reno" -q lint
notes=$(find releasenotes/notes -name '*.yaml' | wc -l)
mkdir -p releasenotes/build
"$venv/bin/reno" -q report --output releasenotes/build/notes.rst
echo "docs: reno lint and report clean ($notes notes)"
"$venv/bin/sphinx-build" -W --keep-going -q -b html releasenotes/source releasenotes/build/html
echo "docs: releasenotes/build/html built without warnings"
