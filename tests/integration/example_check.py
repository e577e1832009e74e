# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The play that checks an example inventory (inventories/examples/*) as a user would before a first rollout."""


def check_play(plan_file):
    """A play on localhost: the installed rollout_target on the inventory's target (with the canary steps' weights
    and the production batches), feature_flags on every phase's flags; the plan saved as JSON to ``plan_file``."""
    return [{"name": "Check the example", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "The target, its weights and batches", "register": "plan",
         "stagegate.rollout.rollout_target": {
             "target": "{{ rollout_target }}", "groups": "{{ groups }}", "hosts": "{{ groups.all }}",
             "canary_weights": "{{ [0] + rollout_canary.steps | map(attribute='weight') | list }}",
             "batches": "{{ rollout_production.batches }}", "version": "v2"}},
        {"name": "Every phase's flags against the schema",
         "stagegate.rollout.feature_flags": {"schema": "{{ rollout_flag_schema }}",
                                             "flags": "{{ lookup('vars', 'rollout_' ~ item).flags }}",
                                             "phase": "{{ item }}"},
         "loop": ["staging", "canary", "production", "advanced"]},
        {"name": "Save the plan", "ansible.builtin.copy": {"content": "{{ plan | to_json }}",
                                                           "dest": str(plan_file), "mode": "0600"}}]}]
