#!/usr/bin/env bash
# Run the Molecule scenarios under extensions/molecule/ (delegated driver, localhost): the ones named as
# arguments, or every one (`make molecule`). `make test` names phase_staging, phase_canary and the others:
# production and advanced run in the SSH hosts test and the demo test already (CI time).
# The phase scenarios run in rollout order on one shared local stack
# (STAGEGATE_MOLECULE_STACK): each one's prepare finds the earlier phases settled on the
# ledger, so the whole rollout runs once. Run one alone with `molecule test -s phase_canary`
# (it then starts its own stack and runs the earlier phases itself).
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$PWD/.collections}"
export PATH="$PWD/.venv/bin:$PATH"
phases="phase_staging phase_canary phase_production phase_advanced"
others=$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename \
         | grep -v '^phase_' | sort || true)
if [ "$#" -gt 0 ]; then  # the phases named, in rollout order, then the other scenarios named
    wanted=" $* "
    phases=$(for s in $phases; do case "$wanted" in *" $s "*) echo "$s";; esac; done)
    others=$(for s in "$@"; do case "$s" in phase_*) ;; *) echo "$s";; esac; done)
fi
shared=$(mktemp -d /tmp/stagegate-molecule.XXXXXX)
export STAGEGATE_MOLECULE_STACK="$shared/stack"
cleanup() {
    if [ -f "$STAGEGATE_MOLECULE_STACK/loadgen.pid" ]; then
        kill -TERM -- "-$(cat "$STAGEGATE_MOLECULE_STACK/loadgen.pid")" 2>/dev/null || true
    fi
    if [ -f "$STAGEGATE_MOLECULE_STACK/stack.json" ]; then
        python -m demo.stack.local down --workdir "$STAGEGATE_MOLECULE_STACK" >/dev/null || true
    fi
    rm -rf "$shared"
}
trap cleanup EXIT
for s in $phases $others; do
    [ -f "extensions/molecule/$s/molecule.yml" ] || { echo "molecule: scenario $s is missing" >&2; exit 1; }
    echo "== molecule test -s $s"
    timeout 900 molecule test -s "$s"
done
