# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: env_flags
short_description: The flags of an env file (KEY=value lines), with some set and some taken out
version_added: "0.1.0"
description:
  - Reads C(KEY=value) lines (blank lines and C(#) comments skipped, the last of a key wins) into a mapping of
    strings, then sets the flags of O(set) and takes out those of O(unset). A line that is not C(KEY=value) is an
    error naming its number.
  - Used by the C(reload) action of the C(deploy_hosts) role (a running slot's flags changed, then the program told
    to re-read them) and by the rollback of a queue consumer's canary. See C(plugins/module_utils/env_flags.py).
author:
  - stagegate.rollout contributors (@stagegate)
options:
  _input:
    description: The env file's text.
    type: str
    required: true
  set:
    description: Flags to set (name -> value).
    type: dict
    default: {}
  unset:
    description: Flags to take out (a flag of a schema then gets its default when written).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Pause the consumer of the stable slot
  ansible.builtin.copy:
    dest: /opt/app/stable/service.env
    content: >-
      {% for k, v in (env_text | stagegate.rollout.env_flags(set={'CODEX_PUBLISH_ENABLED': 'false'})).items()
      %}{{ k }}={{ v }}
      {% endfor %}
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The flags after the change, name -> value (the file's values as strings).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.module_utils.env_flags import EnvFlagsError, changed


def env_flags(text, set=None, unset=None):  # pylint: disable=redefined-builtin
    try:
        return changed(text, set_flags=set, unset=unset)
    except EnvFlagsError as exc:
        raise AnsibleFilterError("env_flags: %s" % exc)


class FilterModule(object):
    """stagegate.rollout env_flags filter."""

    def filters(self):
        return {"env_flags": env_flags}
