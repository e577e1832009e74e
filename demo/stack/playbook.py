"""Run the collection's playbooks (by FQCN) against the demo stack's inventory, as a user would:

    ansible-playbook -i <workdir>/inventory stagegate.rollout.<name> -e rollout_version=<version> ...
"""
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def env():
    """The environment of an ansible-playbook run: the collection from this checkout, no colours."""
    out = dict(os.environ)
    out.update({"ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO_ROOT, ".collections"),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "True", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "false",
                "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_RETRY_FILES_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                "PATH": BIN + os.pathsep + out.get("PATH", "")})
    return out


def argv(info, name, version, extra=None, args=()):
    """The command line of one playbook run; extra vars go through a file (JSON) in the work directory."""
    ev = {"rollout_version": version}
    ev.update(extra or {})
    ev_file = os.path.join(info["workdir"], "extra-vars-%s-%s.json" % (name, version))
    with open(ev_file, "w", encoding="utf-8") as fh:
        json.dump(ev, fh)
    exe = os.path.join(BIN, "ansible-playbook")
    return [exe if os.path.exists(exe) else "ansible-playbook", "-i", info["inventory"],
            "stagegate.rollout.%s" % name, "-e", "@" + ev_file] + list(args)


def run(info, name, version, extra=None, args=(), timeout=900, log=None):
    """Run ``stagegate.rollout.<name>``; returns (rc, output). The output is also written to ``log``."""
    proc = subprocess.run(argv(info, name, version, extra, args), cwd=info["workdir"], env=env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    if log:
        with open(log, "w", encoding="utf-8") as fh:
            fh.write(out)
    return proc.returncode, out
