# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of what a deploy_hosts directory holds (``deploy.json``): read, checked against who asks,
written - the directory created with it.

A version directory (no instance) keeps its first record; an instance's directory gets a new record when
what runs there changes (the time it was written, ``deployed_at``, left out of the comparison). A directory
that belongs to another instance, or holds a version when an instance asks (and the other way round), is
refused before anything changes. :func:`plan` decides, :func:`apply` reads, plans and writes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import atomic_write

TIME_KEY = "deployed_at"


class DeployRecordError(ValueError):
    """The record cannot be read, belongs to someone else, or cannot be written; the message names the path."""


def _whose(instance):
    return "instance %s" % instance if instance else "a version"


def read(path):
    """The record in ``path`` (a dict) and the file's text, or (None, "") when there is none."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return None, ""
        raise DeployRecordError("%s: cannot be read: %s" % (path, exc))
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise DeployRecordError("%s: not a JSON record (%s); move it away or remove it" % (path, exc))
    if not isinstance(record, dict):
        raise DeployRecordError("%s: not a JSON object; move it away or remove it" % path)
    return record, text


def plan(previous, record, instance, rewrite):
    """The record to write (with ``instance`` when given), or None to keep ``previous``.

    Raises :class:`DeployRecordError` when ``previous`` belongs to another instance (or to a version while
    ``instance`` is given, or the other way round)."""
    wanted = dict(record)
    wanted.pop(TIME_KEY, None)
    if instance:
        wanted["instance"] = instance
    if previous is None:
        return wanted
    theirs = previous.get("instance") or ""
    if theirs != (instance or ""):
        raise DeployRecordError("the directory holds %s (%s), not %s; use another %s" % (
            _whose(theirs), previous.get("version", "?"), _whose(instance),
            "instance" if instance else "version"))
    kept = dict((k, v) for k, v in previous.items() if k != TIME_KEY)
    return wanted if rewrite and kept != wanted else None


def render(record, deployed_at):
    """The file's text: the record and the time it was written, indented, keys sorted."""
    return json.dumps(dict(record, **{TIME_KEY: deployed_at}), indent=4, sort_keys=True) + "\n"


def apply(path, record, instance="", rewrite=False, deployed_at="", check_mode=False, mode=0o644, dir_mode=0o755,
          module=None):
    """Create the directory of ``path`` when missing and write the record when :func:`plan` says so.

    Returns a dict: ``changed``, ``created`` (the directory), ``previous`` (the record found, or None),
    ``record`` (what the file holds afterwards), ``before`` / ``after`` (the file's text, for a diff)."""
    directory = os.path.dirname(path) or "."
    created = not os.path.isdir(directory)
    if created and os.path.exists(directory):
        raise DeployRecordError("%s: exists and is not a directory" % directory)
    previous, before = (None, "") if created else read(path)
    try:
        wanted = plan(previous, record, instance, rewrite)
    except DeployRecordError as exc:
        raise DeployRecordError("%s: %s" % (directory, exc))
    result = dict(changed=created or wanted is not None, created=created, previous=previous,
                  record=previous, before=before, after=before)
    if wanted is not None:
        text = render(wanted, deployed_at)
        result.update(record=dict(wanted, **{TIME_KEY: deployed_at}), after=text)
    if check_mode or not result["changed"]:
        return result
    if created:
        try:
            os.makedirs(directory)
            os.chmod(directory, dir_mode)
        except OSError as exc:
            raise DeployRecordError("%s: cannot be created: %s" % (directory, exc))
    if wanted is not None:
        try:
            atomic_write(path, result["after"], mode=mode, module=module)
        except (OSError, ValueError) as exc:
            raise DeployRecordError("%s: cannot be written: %s" % (path, exc))
    return result
