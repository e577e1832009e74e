"""The demo service's slots (``stable`` / ``canary``): run by the collection's ``deploy_hosts`` role under
supervisord (the stack installs the stable version with ``stagegate.rollout.install``, the phases do the rest),
read here for the demo runner and the tests.

    python -m demo.stack.slot status --stack demo/run/stack.json [--slot canary]

prints one JSON object per slot: ``running``, ``version`` and ``healthy`` from the slot's ``/healthz``, the
program's ``pid`` from supervisorctl.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request


class SlotError(RuntimeError):
    pass


def load_stack(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def proc_start_time(pid):
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as fh:
            data = fh.read()
        fields = data[data.rindex(")") + 2:].split()
        if fields[0] == "Z":
            return None
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid, start_time=None):
    if not pid:
        return False
    st = proc_start_time(pid)
    return st is not None and (start_time is None or st == start_time)


def kill_group(pid, start_time=None, timeout=10.0):
    """SIGTERM the process group of ``pid`` (if it is still the same process), SIGKILL after ``timeout``."""
    if not alive(pid, start_time):
        return False
    for sig, wait in ((signal.SIGCONT, 0), (signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid, start_time):
                return True
            time.sleep(0.02)
    _reap(pid)
    return True


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def health(port, timeout=1.0):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=timeout) as resp:
            return json.loads(resp.read())
    except Exception:
        return None


def _supervisorctl(stack, *args, timeout=15):
    sup = stack["supervisor"]
    return subprocess.run([sup["supervisorctl"], "-c", sup["conf"]] + list(args), capture_output=True, text=True,
                          timeout=timeout, check=False)


def pid(stack, slot):
    """The pid of the slot's program, or None when it does not run."""
    if not os.path.exists(stack["supervisor"]["conf"]):
        return None
    out = _supervisorctl(stack, "pid", stack["slots"][slot]["program"]).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def status(stack, slot):
    s = stack["slots"][slot]
    h = health(s["port"])
    p = pid(stack, slot)
    return {"slot": slot, "server": s["server"], "port": s["port"], "running": bool(h) or bool(p),
            "pid": p, "version": h.get("version") if h else None,
            "healthy": bool(h and h.get("status") == "ok"), "health": h, "env_file": s["env_file"], "log": s["log"]}


def kill(stack, slot, sig=signal.SIGKILL):
    """Kill the slot's process (the stack's tests); supervisord starts it again. Returns the killed pid or None."""
    p = pid(stack, slot)
    if p:
        os.kill(p, sig)
    return p


def supervisord_pid(stack):
    try:
        with open(stack["supervisor"]["pid_file"], encoding="utf-8") as fh:
            p = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    return p if alive(p) else None


def shutdown(stack, timeout=20.0):
    """Stop supervisord and every slot it runs; True when something was running."""
    p = supervisord_pid(stack)
    if not p:
        return False
    _supervisorctl(stack, "shutdown")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(p):
        _reap(p)
        time.sleep(0.05)
    if alive(p):
        kill_group(p)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demo.stack.slot", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("action", choices=("status",))
    p.add_argument("--stack", default="demo/run/stack.json")
    p.add_argument("--slot", default=None)
    a = p.parse_args(argv)
    try:
        stack = load_stack(a.stack)
        if a.slot and a.slot not in stack["slots"]:
            raise SlotError("slot %r is not in %s (accepted: %s)" % (a.slot, a.stack, ", ".join(sorted(stack["slots"]))))
        out = status(stack, a.slot) if a.slot else {"slots": {sl: status(stack, sl) for sl in sorted(stack["slots"])}}
    except (SlotError, OSError, KeyError, ValueError) as exc:
        json.dump({"failed": True, "changed": False, "msg": str(exc)}, sys.stdout)
        sys.stdout.write("\n")
        return 1
    json.dump(dict(out, changed=False), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
