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

.PHONY: help setup demo test checks checks-then-c unit sanity lint integration integration-a integration-b integration-c molecule molecule-ci bench clean ee

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python demo/run_demo.py

# Three lanes at once (most of a rollout test waits on analysis windows, the checks keep the CPU busy
# meanwhile; the third lane runs integration-c once the checks are done); each prints its output when it ends.
test: setup
	$(MAKE) -j3 --output-sync=target --no-print-directory integration-a integration-b checks-then-c

checks-then-c:
	$(MAKE) -j1 --no-print-directory checks integration-c

# one after the other (-j1: one lane)
checks:
	$(MAKE) -j1 --no-print-directory unit sanity lint molecule-ci

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

# Three parts (most of a rollout test is waiting on analysis windows): each with its own pytest temp dir; the
# SSH host suites (hosts: 127.0.0.11-13; faults: 127.0.0.21, blue_green: 127.0.0.31-32) use distinct addresses.
# In `make test` part C follows the checks, so the three lanes end about together. Each part prints its output
# when it ends, its slowest tests last.
INTEGRATION_A := tests/integration/hosts tests/integration/blue_green tests/integration/consumer_canary
INTEGRATION_C := $(wildcard tests/integration/demo tests/integration/kubernetes)
INTEGRATION_B := $(filter-out $(INTEGRATION_A) $(INTEGRATION_C) %/__pycache__,$(patsubst %/,%,$(wildcard tests/integration/*/)))
integration:
	$(MAKE) -j3 --output-sync=target --no-print-directory integration-a integration-b integration-c

integration-a:
	$(PYTEST) $(INTEGRATION_A) -q --durations=30 --basetemp=/tmp/stagegate-it-a

integration-b:
	$(PYTEST) $(INTEGRATION_B) -q --durations=30 --basetemp=/tmp/stagegate-it-b

integration-c:
	$(PYTEST) $(INTEGRATION_C) -q --durations=30 --basetemp=/tmp/stagegate-it-c

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
