# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ``kind: kubernetes`` target in a user's inventory, through the FQCN phase playbook, against the kmock
emulator (kube_emulator.py says what it emulates; no cluster runs here).

A bad kubernetes target is refused before any change, naming its field; a good one is checked and then
refused by the phases, which do not drive a cluster yet (docs/targets.md) - in both cases the emulator saw
no request at all, and no ledger was written.
"""
import os
import subprocess

import pytest
import yaml

from kube_kit import VENV_BIN, helm_env

GOOD = {"namespace": "codex", "kubeconfig": None, "api_key": "kube-s3cret",
        "router": {"type": "gateway-api", "parent_refs": [{"name": "public", "namespace": "gateway-system"}]}}


def run_canary(tmp_path, emulator, kubernetes):
    inv = tmp_path / "my-cluster"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    target = {"kind": "kubernetes", "name": "codex", "kubernetes": kubernetes,
              "metrics": {"provider": {"type": "prometheus", "url": "http://127.0.0.1:9"},
                          "requests": "http_requests_total", "selector": 'job="codex"',
                          "stable_selector": 'track="stable"', "canary_selector": 'track="canary"'}}
    state = tmp_path / "state"
    (inv / "group_vars" / "all" / "target.yml").write_text(yaml.safe_dump({
        "rollout_target": target, "rollout_state_dir": str(state), "rollout_auto_approve": True}))
    env = helm_env(tmp_path, emulator.kubeconfig)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inv), "stagegate.rollout.canary",
                           "-e", "rollout_version=v2", "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    text = proc.stdout + proc.stderr
    assert "kube-s3cret" not in text
    assert emulator.requests() == [], "the cluster was called before the target was accepted"
    assert not os.path.exists(str(state / "ledger.jsonl"))
    return proc.returncode, text


@pytest.mark.parametrize("over,expected", [
    ({"namespace": None}, "rollout_target.kubernetes.namespace: required for kind kubernetes"),
    ({"router": {"type": "istio"}},
     "rollout_target.kubernetes.router.type: 'istio' is not a router (accepted: gateway-api, ingress-nginx, blue-green)"),
    ({"router": {"type": "ingress-nginx"}}, "rollout_target.kubernetes.router.ingress_host: the host the Ingress pair"),
], ids=["no namespace", "unknown router", "ingress without host"])
def test_a_bad_kubernetes_target_is_refused_naming_the_field(tmp_path, emulator, over, expected):
    kubernetes = dict(GOOD, kubeconfig=str(emulator.kubeconfig), **over)
    rc, text = run_canary(tmp_path, emulator, dict((k, v) for k, v in kubernetes.items() if v is not None))
    assert rc != 0 and expected in text, text[-3000:]


def test_a_good_kubernetes_target_is_refused_by_the_phases_until_they_drive_a_cluster(tmp_path, emulator):
    rc, text = run_canary(tmp_path, emulator, dict(GOOD, kubeconfig=str(emulator.kubeconfig)))
    assert rc != 0, text[-3000:]
    assert "the phase playbooks do not drive a cluster yet" in text, text[-3000:]
