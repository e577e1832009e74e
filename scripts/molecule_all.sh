#!/usr/bin/env bash
# Run every Molecule scenario under extensions/molecule/ (delegated driver, localhost).
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$PWD/.collections}"
export PATH="$PWD/.venv/bin:$PATH"
scenarios=$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)
if [ -z "$scenarios" ]; then
    echo "molecule: no scenario under extensions/molecule/" >&2
    exit 1
fi
for s in $scenarios; do
    echo "== molecule test -s $s"
    timeout 600 molecule test -s "$s"
done
