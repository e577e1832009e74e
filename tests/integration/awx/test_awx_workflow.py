# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/awx.yml against a stand-in of the AWX controller API (controller_standin.py).

AWX cannot run here, so the awx.awx modules talk to an in-memory stand-in that follows the AWX API's conventions
(it is not AWX: it checks references and names, not AWX's full validation). The test reads back every object and
link the playbook made: credential types and credentials (secrets sent to AWX, never printed), the execution
environment, the project, the SCM inventory source, the job templates, the workflow with its survey, approval
nodes with a timeout, success edges through the approvals and a failure edge from every phase to a rollback node
that names the failed phase. A second run changes nothing but the credentials (AWX cannot compare secrets).
"""
import json
import sys

from controller_standin import ControllerStandIn

from tests.integration.playbook_run import ansible_env, run_playbook

PHASES = ["staging", "canary", "production", "advanced"]
TOKEN = "awx-oauth-" + "5ec12e7" * 3
SECRETS = {
    "awx_ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtestkey9f3a\n"
                           "-----END OPENSSH PRIVATE KEY-----\n",
    "awx_vault_password": "vault-pw-8c1d77e2",
    "awx_prometheus_token": "prom-token-4b9e0a61",
    "awx_nats_creds": "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.nats-jwt-d00d\n------END NATS USER JWT------\n"
                      "-----BEGIN USER NKEY SEED-----\nSUAFAKESEEDFORTHESTANDINTEST2QQ\n------END USER NKEY SEED------\n",
}


SCALE = {"awx_forks": 20, "awx_instance_groups": ["rollout runners"]}  # the sizes' settings (docs/targets.md)
SCM_URL = "https://git.example.com/org/site.git"


def _run(standin, tmp_path, name):
    """playbooks/awx.yml at -vvv against the stand-in (tests/integration/playbook_run.py) -> PlaybookRun, after
    asserting that no secret is in its output (also written to ``<name>.log``)."""
    secrets = tmp_path / "awx-secrets.json"  # as a vault-encrypted vars file would give them
    secrets.write_text(json.dumps(SECRETS))
    run = _awx_playbook(standin, tmp_path, verbosity=3, extra_vars=dict(SCALE, awx_project_scm_url=SCM_URL),
                        extra_args=["-e", "@" + str(secrets)])
    (tmp_path / ("%s.log" % name)).write_text(run.output)
    for key, secret in SECRETS.items():
        for line in secret.strip().splitlines():
            assert line.startswith("--") or line not in run.output, "%s printed by ansible-playbook -vvv" % key
    assert TOKEN not in run.output
    return run


def _awx_playbook(standin, tmp_path, **kwargs):
    """stagegate.rollout.awx with the controller's address and token in the environment, the default callback
    (with profile_tasks' timings)."""
    env = ansible_env(tmp_path, CONTROLLER_HOST=standin.url, CONTROLLER_OAUTH_TOKEN=TOKEN,
                      ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
    return run_playbook("stagegate.rollout.awx", tmp_path, connection="local", callback="default", env=env, **kwargs)


def _graph(c):
    """Every node as 'identifier -> template' and every edge as 'from -kind-> to', as the controller holds them."""
    wf = c.one("workflow_job_templates", name="stagegate phased rollout")
    nodes = dict((n["id"], n) for n in c.find("workflow_job_template_nodes", workflow_job_template=wf["id"]))
    lines, edges = [], set()
    for nid, node in sorted(nodes.items(), key=lambda kv: kv[1]["identifier"]):
        coll, ujt = c.unified(node["unified_job_template"])
        extra = " extra_data=%s" % json.dumps(node["extra_data"]) if node.get("extra_data") else ""
        lines.append("node %-19s %s %r%s" % (node["identifier"], coll, ujt["name"], extra))
        for kind in ("success", "failure", "always"):
            for target in c.linked("workflow_job_template_nodes", nid, kind + "_nodes"):
                edges.add((node["identifier"], kind, nodes[target]["identifier"]))
    lines += ["edge %s -%s-> %s" % e for e in sorted(edges)]
    return wf, nodes, edges, "\n".join(lines)


def test_awx_playbook_builds_the_phased_workflow(tmp_path):
    with ControllerStandIn(TOKEN) as standin:
        c = standin.controller
        group = c.add("instance_groups", {"name": "rollout runners"})  # instance groups exist before (AWX admin)
        first = _run(standin, tmp_path, "first")
        assert first.rc == 0, first

        org = c.one("organizations", name="Default")["id"]
        # credentials: custom types with their injectors, and the four credentials holding the secrets
        prom_type = c.one("credential_types", name="stagegate Prometheus token")
        nats_type = c.one("credential_types", name="stagegate NATS credentials")
        assert prom_type["injectors"] == {"env": {"STAGEGATE_PROMETHEUS_TOKEN": "{{ token }}"}}
        assert nats_type["injectors"] == {"file": {"template.creds": "{{ creds }}"},
                                          "env": {"STAGEGATE_NATS_CREDS": "{{ tower.filename.creds }}"}}
        assert [f["secret"] for f in prom_type["inputs"]["fields"] + nats_type["inputs"]["fields"]] == [True, True]
        creds = dict((cr["name"], cr) for cr in c.find("credentials"))
        types = dict((t["id"], t["name"]) for t in c.find("credential_types"))
        assert dict((n, types[cr["credential_type"]]) for n, cr in creds.items()) == {
            "stagegate ssh": "Machine", "stagegate vault": "Vault",
            "stagegate prometheus": "stagegate Prometheus token", "stagegate nats": "stagegate NATS credentials"}
        assert creds["stagegate ssh"]["inputs"] == {"username": "root", "ssh_key_data": SECRETS["awx_ssh_private_key"]}
        assert creds["stagegate vault"]["inputs"] == {"vault_password": SECRETS["awx_vault_password"]}
        assert creds["stagegate prometheus"]["inputs"] == {"token": SECRETS["awx_prometheus_token"]}
        assert creds["stagegate nats"]["inputs"] == {"creds": SECRETS["awx_nats_creds"]}
        assert all(cr["organization"] == org for cr in creds.values())

        # the execution environment, the project (the user's repository) and its inventory as an SCM source
        ee = c.one("execution_environments", name="stagegate-rollout-ee")
        project = c.one("projects", name="stagegate-rollout")
        assert project["scm_type"] == "git" and project["scm_url"] == SCM_URL
        assert project["default_environment"] == ee["id"] and project["organization"] == org
        inventory = c.one("inventories", name="stagegate")
        source = c.one("inventory_sources", name="stagegate")
        assert (source["inventory"], source["source"], source["source_project"], source["source_path"]) == \
            (inventory["id"], "scm", project["id"], "inventory")
        assert source["update_on_launch"] is True

        # job templates: one per phase and the rollback; credentials attached, the version survey, no secret vars
        survey_vars = ["rollout_version"]
        templates = dict((t["name"], t) for t in c.find("job_templates"))
        assert sorted(templates) == sorted(["stagegate " + p for p in PHASES] + ["stagegate rollback"])
        for name, t in templates.items():
            playbook = name.split(" ", 1)[1]
            assert t["playbook"] == "playbooks/%s.yml" % playbook
            assert (t["project"], t["inventory"]) == (project["id"], inventory["id"])
            assert t["execution_environment"] == ee["id"]
            assert sorted(c.linked("job_templates", t["id"], "credentials")) == sorted(cr["id"] for cr in creds.values())
            assert t["survey_enabled"] is True
            assert [q["variable"] for q in c.surveys[("job_templates", t["id"])]["spec"]] == survey_vars
            assert t["ask_variables_on_launch"] is (playbook == "rollback")
            assert t["forks"] == 20 and c.linked("job_templates", t["id"], "instance_groups") == [group], t
            assert not json.loads(t.get("extra_vars") or "{}")

        # the workflow: version survey, the approvals are its nodes so the phases run with rollout_auto_approve
        wf, nodes, edges, graph = _graph(c)
        sys.stdout.write("workflow graph seen by the controller stand-in:\n%s\n" % graph)
        assert wf["survey_enabled"] is True and wf["organization"] == org
        assert [q["variable"] for q in c.surveys[("workflow_job_templates", wf["id"])]["spec"]] == survey_vars
        assert json.loads(wf["extra_vars"]) == {"rollout_auto_approve": True}

        by_id = dict((n["identifier"], n) for n in nodes.values())
        assert sorted(by_id) == sorted(PHASES + ["approve-" + p for p in PHASES[1:]] + ["rollback-" + p for p in PHASES])
        for phase in PHASES:
            assert c.unified(by_id[phase]["unified_job_template"])[1]["name"] == "stagegate " + phase
            rollback = by_id["rollback-" + phase]
            assert c.unified(rollback["unified_job_template"])[1]["name"] == "stagegate rollback"
            assert rollback["extra_data"]["rollout_phase"] == phase
        for phase in PHASES[1:]:
            coll, approval = c.unified(by_id["approve-" + phase]["unified_job_template"])
            assert coll == "workflow_approval_templates"
            assert approval["name"] == "Approve " + phase and approval["timeout"] == 86400
        expected = set()
        for before, after in zip(PHASES, PHASES[1:]):
            expected |= {(before, "success", "approve-" + after), ("approve-" + after, "success", after)}
        expected |= set((p, "failure", "rollback-" + p) for p in PHASES)
        assert edges == expected, graph
        # the root is staging: every other node has a parent
        children = set(e[2] for e in edges)
        assert set(by_id) - children == {"staging"}

        # the second run changes nothing but the credentials (secrets are write-only in AWX)
        before = json.dumps(c.objects, sort_keys=True, default=str)
        second = _run(standin, tmp_path, "second")
        assert second.rc == 0, second
        recap = second.output[second.output.rindex("PLAY RECAP"):]
        assert "changed=1 " in recap, recap  # the credentials task: AWX answers $encrypted$, so it always updates
        assert json.loads(before)["workflow_job_template_nodes"] == json.loads(
            json.dumps(c.objects, sort_keys=True, default=str))["workflow_job_template_nodes"]


def test_awx_playbook_refuses_without_the_repository(tmp_path):
    with ControllerStandIn(TOKEN) as standin:
        run = _awx_playbook(standin, tmp_path)
        assert run.rc != 0
        assert "awx_project_scm_url" in run.output
        assert not standin.controller.find("job_templates")
