# stagegate.rollout — every entry point a newcomer or CI needs.
#   make demo   install everything, then roll a good release through all four
#               phases and a bad one back, on this machine
#   make test   install everything, then run every test suite
#   make ee     the execution environment's build context in .ee/context (then podman build)
SHELL := /bin/bash
ROOT := $(CURDIR)
COLL := $(ROOT)/.collections/ansible_collections/stagegate/rollout
export PATH := $(ROOT)/.venv/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.collections
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := True
export ANSIBLE_FORCE_COLOR := false
export ANSIBLE_NOCOWS := 1
export PYTHONDONTWRITEBYTECODE := 1
PYTEST := $(ROOT)/.venv/bin/python -m pytest

.PHONY: help setup demo test unit sanity lint integration molecule molecule-ci bench clean ee

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python demo/run_demo.py

test: setup
	$(MAKE) unit sanity lint integration molecule-ci

unit:
	$(PYTEST) tests/unit -q

# ansible-test must run from the collection's ansible_collections/ path
sanity:
	bash scripts/sanity.sh $(SANITY_ARGS)

# ansible-lint installs a copy of the collection into its cache (ANSIBLE_HOME): a fresh
# private one each run, so it never lints against a stale copy
lint:
	rm -rf .cache/ansible-lint
	ANSIBLE_HOME=$(ROOT)/.cache/ansible-lint ansible-lint --profile production --offline

# the slowest tests are listed at the end (where CI time goes)
integration:
	$(PYTEST) tests/integration -q --durations=25

molecule:
	bash scripts/molecule_all.sh

# in CI: Molecule's own check of a phase (staging: converge, idempotence, verify); every phase runs in
# tests/integration/hosts, tests/integration/faults and the demo test, the retention role in
# tests/integration/jetstream (docs/DEVELOPING.md)
molecule-ci:
	bash scripts/molecule_all.sh phase_staging

ee: setup
	bash scripts/ee_context.sh

bench:
	.venv/bin/python -m bench

clean:
	rm -rf .collections tests/output bench/out demo/run .ee
