# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the metric modules (metric_gate, metric_query, drift_monitor, canary_judge).

:class:`MetricModule` is an ``AnsibleModule`` whose provider secrets (token, password, URL userinfo) are
``no_log`` values and are scrubbed from every message and result it fails or exits with; it builds the
providers (a provider that cannot be built fails the task, naming the field). :func:`run_metric_module` is
what a metric module's ``main()`` calls: its argument spec and the function that computes its result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import MetricError
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_providers import build_provider
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import protect_module
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub


class MetricModule(AnsibleModule):
    """An AnsibleModule that keeps the secrets of its providers out of every message and result."""

    def __init__(self, argument_spec, **kwargs):
        AnsibleModule.__init__(self, argument_spec=argument_spec, **kwargs)
        self.secrets = protect_module(self)

    def fail(self, msg, **result):
        """fail_json with the message and the result scrubbed of the providers' secrets."""
        self.fail_json(msg=scrub(msg, self.secrets), **scrub(result, self.secrets))

    def exit(self, **result):
        """exit_json with the result scrubbed of the providers' secrets."""
        self.exit_json(**scrub(result, self.secrets))

    def provider(self, spec, field="provider"):
        """The provider of ``spec``, its secrets added to those scrubbed; fails with ``<field>: <why>``."""
        try:
            provider = build_provider(spec)
        except (MetricError, ValueError, TypeError) as exc:
            self.fail("%s: %s" % (field, to_native(exc)))
        self.secrets = sorted(set(self.secrets) | set(provider.secrets()), key=len, reverse=True)
        return provider


def run_metric_module(run, argument_spec, **kwargs):
    """A metric module's main(): ``run(module)`` returns the result the task exits with (scrubbed)."""
    module = MetricModule(argument_spec, **kwargs)
    module.exit(**run(module))
