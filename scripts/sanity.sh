#!/usr/bin/env bash
# ansible-test needs the collection at …/ansible_collections/stagegate/rollout
# as a real directory (it resolves symlinks), so the files git knows of (tracked
# and new, not ignored) are mirrored to .sanity/run.*/ansible_collections/stagegate/rollout
# and ansible-test runs there. Extra arguments go to `ansible-test sanity`.
set -euo pipefail
cd "$(dirname "$0")/.."
# one directory per run, so that several runs (people, CI jobs) never share one
mkdir -p .sanity
run_dir=$(mktemp -d "$PWD/.sanity/run.XXXXXX")
trap 'rm -rf "$run_dir"' EXIT
dest=$run_dir/ansible_collections/stagegate/rollout
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$dest"
cd "$dest"
# ansible-test (sanity) wants a git repo or it lists every file; give it one.
git init -q && git add -A >/dev/null 2>&1
set +e
ansible-test sanity --python 3.11 --color no "$@" 2>&1 | sed -u -e "/^b'!!/d"
exit "${PIPESTATUS[0]}"
