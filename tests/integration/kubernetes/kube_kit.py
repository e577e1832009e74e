# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths shared by the Kubernetes tests (a module of its own: test modules must not import conftest)."""
import os
import shutil

from tests.integration.playbook_run import ansible_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CHART = os.path.join(ROOT, "roles", "deploy_kubernetes", "files", "stagegate-service")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def helm_binary():
    """The real Helm 3 binary: .venv/bin/helm (make setup extracts it), else helm on PATH."""
    for candidate in (os.path.join(VENV_BIN, "helm"), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def helm_env(tmp_path, kubeconfig):
    """Environment for helm and ansible-playbook (tests/integration/playbook_run.py): private Helm homes, the
    emulator's kubeconfig, the default callback with task times."""
    return ansible_env(
        tmp_path,
        KUBECONFIG=str(kubeconfig),
        HELM_CACHE_HOME=str(tmp_path / "helm-cache"),
        HELM_CONFIG_HOME=str(tmp_path / "helm-config"),
        HELM_DATA_HOME=str(tmp_path / "helm-data"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
    )
