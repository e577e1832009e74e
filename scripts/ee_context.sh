#!/usr/bin/env bash
# The execution environment's build context, from this checkout:
#   bash scripts/ee_context.sh [DIR]
#   podman build -t registry.example.com/stagegate/rollout-ee:0.1.0 DIR/.ee/context
# puts into DIR/.ee/ (DIR defaults to the repository root) the collection tarball
# (ansible-galaxy collection build) and a Helm 3 binary (HELM, else .venv/bin/helm, else helm on PATH),
# then runs `ansible-builder create` on execution-environment.yml into DIR/.ee/context.
# With a DIR other than the root, execution-environment.yml and the files it names are copied there first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(mkdir -p "${1:-$ROOT}" && cd "${1:-$ROOT}" && pwd)
BIN=$ROOT/.venv/bin
[ -x "$BIN/ansible-builder" ] || BIN=$(dirname "$(command -v ansible-builder)")
if [ "$OUT" != "$ROOT" ]; then
  cp execution-environment.yml requirements.txt requirements.yml bindep.txt "$OUT/"
fi
rm -rf "$OUT/.ee"
mkdir -p "$OUT/.ee"
"$BIN/ansible-galaxy" collection build --force --output-path "$OUT/.ee" "$ROOT" >/dev/null
helm_bin=${HELM:-}
[ -n "$helm_bin" ] || { [ -x "$ROOT/.venv/bin/helm" ] && helm_bin=$ROOT/.venv/bin/helm; } || helm_bin=$(command -v helm || true)
if [ -z "$helm_bin" ] || ! "$helm_bin" version --short | grep -q '^v3\.'; then
  echo "ee_context: no Helm 3 binary (set HELM=/path/to/helm, or run make setup)" >&2
  exit 1
fi
install -m 0755 "$helm_bin" "$OUT/.ee/helm"
"$BIN/ansible-builder" create -f "$OUT/execution-environment.yml" -c "$OUT/.ee/context" --output-filename Containerfile
