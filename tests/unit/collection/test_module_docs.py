# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module's documentation says about the collection: its version, its action group."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODULES = sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")))


def _string_assigned(body, name, path):
    for node in body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no %s" % (path, name))


def documentation(path):
    """The module's DOCUMENTATION (YAML), read without importing the module."""
    with open(path, encoding="utf-8") as fh:
        return _string_assigned(ast.parse(fh.read()).body, "DOCUMENTATION", path)


def fragment(name):
    """The collection's doc fragment ``stagegate.rollout.<file>[.<variable>]`` (YAML), read without importing it."""
    parts = name.split(".")[2:]
    path = os.path.join(ROOT, "plugins", "doc_fragments", parts[0] + ".py")
    with open(path, encoding="utf-8") as fh:
        classes = [n for n in ast.parse(fh.read()).body if isinstance(n, ast.ClassDef)]
    return _string_assigned(classes[0].body, parts[1].upper() if len(parts) > 1 else "DOCUMENTATION", path)


def attributes(path):
    """The module's attributes with those of the collection's doc fragments it extends, as ansible-doc shows them."""
    doc = documentation(path)
    merged = dict(doc.get("attributes") or {})
    for name in doc.get("extends_documentation_fragment") or []:
        if name.startswith("stagegate.rollout."):
            merged.update(fragment(name).get("attributes") or {})
    return merged


def load_yaml(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_every_module_is_documented():
    assert len(MODULES) >= 15
    names = [os.path.basename(p)[:-3] for p in MODULES if not p.endswith("__init__.py")]
    assert all(documentation(p)["module"] == n for p, n in zip(MODULES, names))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: os.path.basename(p)[:-3])
def test_version_added_is_a_version_of_the_collection(path):
    """Nothing is newer than the collection: version_added is at most galaxy.yml's version."""
    version = tuple(int(x) for x in load_yaml("galaxy.yml")["version"].split("."))
    added = documentation(path)["version_added"]
    assert tuple(int(x) for x in str(added).split(".")) <= version, "%s: version_added %s > galaxy.yml's %s" % (
        os.path.basename(path), added, ".".join(map(str, version)))


def test_every_action_group_member_documents_its_group():
    groups = load_yaml("meta", "runtime.yml")["action_groups"]
    members = {}
    for group, mods in groups.items():
        for m in mods:
            if isinstance(m, str):
                members.setdefault(m, []).append("stagegate.rollout.%s" % group)
    assert members, "meta/runtime.yml has no action group"
    for module, expected in sorted(members.items()):
        attr = attributes(os.path.join(ROOT, "plugins", "modules", module + ".py")).get("action_group")
        assert attr, "%s is in %s but does not document attributes.action_group" % (module, expected)
        assert sorted(attr["membership"]) == sorted(expected), (module, attr)
