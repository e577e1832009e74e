# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the Kubernetes tests: the real helm binary, the kmock emulator
(see kube_emulator.py for what it emulates and what not) and ansible-playbook runs
of the deploy_kubernetes role against it."""

import json
import os
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kube_emulator import EmulatorThread  # noqa: E402  (needs the path above)
from kube_kit import CHART, helm_binary, helm_env  # noqa: E402
from tests.integration.playbook_run import run_playbook  # noqa: E402


@pytest.fixture(scope="session")
def helm():
    """helm(*args, env=None) -> CompletedProcess, with the real Helm 3 binary."""
    binary = helm_binary()
    if binary is None:
        pytest.fail("no helm binary: run `make setup` (it extracts Helm 3.18 to .venv/bin/helm)")
    version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert version.startswith("v3."), "Helm 3 expected, found %s" % version

    def run(*args, env=None, check=True):
        proc = subprocess.run([binary] + list(args), capture_output=True, text=True, env=env, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("helm %s failed (%d):\n%s\n%s" % (" ".join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc

    run.binary = binary
    return run


@pytest.fixture
def render(helm, tmp_path):
    """render(values, release='web-stable') -> list of manifests rendered by `helm template`."""
    def run(values, release="web-stable", namespace="rollout"):
        values_file = tmp_path / ("values-%s.yaml" % release)
        values_file.write_text(yaml.safe_dump(values))
        out = helm("template", release, CHART, "--namespace", namespace, "--values", str(values_file)).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]
    return run


@pytest.fixture
def emulator(tmp_path):
    """The kmock Kubernetes emulator on a free loopback port, with a kubeconfig for it."""
    workdir = tmp_path / "emulator"
    workdir.mkdir()
    emu = EmulatorThread(workdir).start()
    yield emu
    emu.stop()


class RoleRun(object):
    """One ansible-playbook run: rc, output, and the deploy_kubernetes_result of every step that ran."""

    def __init__(self, run, result_files):
        self.rc = run.rc
        self.stdout = run.stdout
        self.stderr = run.stderr
        self.results = [json.loads(f.read_text()) if f.exists() else None for f in result_files]

    @property
    def result(self):
        return self.results[-1]

    def __repr__(self):
        return "rc=%s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.stdout[-10000:], self.stderr[-3000:])


@pytest.fixture
def run_role(emulator, helm, tmp_path):
    """run_role(steps, check=False, diff=False) -> RoleRun.

    One ansible-playbook run against the emulator that includes the role
    stagegate.rollout.deploy_kubernetes once per step (a dict of role
    variables, or a list of them) and saves the role's deploy_kubernetes_result
    after each step. A failing step ends the run (later results are None).
    """
    env = helm_env(tmp_path, emulator.kubeconfig)
    counter = {"n": 0}
    common = {
        "deploy_kubernetes_kubeconfig": str(emulator.kubeconfig),
        "deploy_kubernetes_helm_binary": helm.binary,
        "deploy_kubernetes_namespace": "default",
        "deploy_kubernetes_wait_sleep": 1,
        "deploy_kubernetes_wait_timeout": 20,
    }

    def run(steps, check=False, diff=False):
        steps = [steps] if isinstance(steps, dict) else list(steps)
        counter["n"] += 1
        run_dir = tmp_path / ("run-%d" % counter["n"])
        run_dir.mkdir()
        tasks, result_files = [], []
        for index, step in enumerate(steps):
            result_file = run_dir / ("result-%d.json" % index)
            result_files.append(result_file)
            step_vars = dict(common)
            step_vars.update(step)
            tasks += [
                {"name": "Forget the previous result", "ansible.builtin.set_fact": {"deploy_kubernetes_result": {}}},
                {"name": "Step %d: %s" % (index, step.get("deploy_kubernetes_action", "canary")),
                 "ansible.builtin.include_role": {"name": "stagegate.rollout.deploy_kubernetes"},
                 "vars": step_vars},
                {"name": "Save the result of step %d" % index, "check_mode": False,
                 "ansible.builtin.copy": {"content": "{{ deploy_kubernetes_result | to_json }}",
                                          "dest": str(result_file), "mode": "0644"}},
            ]
        playbook = run_dir / "play.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": "deploy_kubernetes against the kmock emulator",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": tasks,
        }]))
        run = run_playbook(playbook, run_dir, check=check, diff=diff, callback=None, env=env, timeout=900)
        return RoleRun(run, result_files)

    return run
