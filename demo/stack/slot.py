"""Start, stop and inspect the demo service in a slot (``stable`` / ``canary``) of a local stack.

    python -m demo.stack.slot start  --stack demo/run/stack.json --slot canary --version v2 [--env-file F]
                                     [--durable NAME --deliver new] [--force]
    python -m demo.stack.slot stop   --stack demo/run/stack.json --slot canary
    python -m demo.stack.slot status --stack demo/run/stack.json [--slot canary]

Each command prints one JSON object (``changed``, ``slot``, ``pid``, ``version``,
``health`` ...) and exits 0, or 1 with ``failed: true`` and ``msg``. ``start`` is
idempotent: the same version with the same env file content already running and
healthy is left alone (``changed: false``); anything else is stopped (SIGTERM,
graceful) and started again, and ``start`` returns only once ``/healthz``
answers. The slot's state is kept in ``<workdir>/services/<slot>.json``.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from demo.stack.ports import port_open


class SlotError(RuntimeError):
    pass


def load_stack(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _state_path(stack, slot):
    return stack["slots"][slot]["state_file"]


def read_state(stack, slot):
    try:
        with open(_state_path(stack, slot), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write_state(stack, slot, state):
    path = _state_path(stack, slot)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


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


def _env_hash(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def status(stack, slot):
    s = stack["slots"][slot]
    state = read_state(stack, slot) or {}
    pid = state.get("pid")
    running = alive(pid, state.get("start_time"))
    h = health(s["port"]) if running else None
    return {"slot": slot, "server": s["server"], "port": s["port"], "running": running,
            "pid": pid if running else None, "version": state.get("version") if running else None,
            "healthy": bool(h and h.get("status") == "ok"), "health": h, "env_file": state.get("env_file"),
            "log": s["log"]}


def stop(stack, slot, timeout=15.0):
    state = read_state(stack, slot) or {}
    pid = state.get("pid")
    was = alive(pid, state.get("start_time"))
    if was:
        kill_group(pid, state.get("start_time"), timeout=timeout)
    if state:
        _write_state(stack, slot, {"pid": None, "version": None, "stopped_at": time.time(),
                                   "last_version": state.get("version")})
    return {"changed": was, "slot": slot, "stopped_pid": pid if was else None, "version": state.get("version")}


def start(stack, slot, version, env_file=None, durable=None, deliver=None, force=False, timeout=20.0,
          extra_args=()):
    s = stack["slots"][slot]
    env_file = os.path.abspath(env_file or s["env_file"])
    if not os.path.exists(env_file):
        raise SlotError("env file %s for slot %s does not exist" % (env_file, slot))
    env_hash = _env_hash(env_file)
    if stack.get("faults_file") and os.path.exists(stack["faults_file"]):
        env_hash += ":" + _env_hash(stack["faults_file"])
    durable = durable or stack["nats"]["durable"]
    state = read_state(stack, slot) or {}
    if (not force and alive(state.get("pid"), state.get("start_time")) and state.get("version") == version
            and state.get("env_hash") == env_hash and state.get("env_file") == env_file
            and state.get("durable") == durable):
        st = status(stack, slot)
        if st["healthy"]:
            return dict(st, changed=False)
    stopped = stop(stack, slot)
    if port_open(s["port"]):
        raise SlotError("port %d of slot %s is taken by a process this stack did not start" % (s["port"], slot))
    argv = [stack["python"], "-m", "demo.service", "--env-file", env_file, "--port", str(s["port"]),
            "--version", version, "--graph-port", str(s["graph_port"]), "--slot", slot,
            "--nats-url", stack["nats"]["url"], "--stream", stack["nats"]["stream"], "--durable", durable,
            "--publish-dir", stack["publish_dir"]]
    if stack.get("faults_file"):
        argv += ["--faults-file", stack["faults_file"]]
    if deliver:
        argv += ["--deliver", deliver]
    argv += list(extra_args)
    env = dict(os.environ, PYTHONPATH=stack["repo_root"])
    with open(s["log"], "ab") as log:
        log.write(("--- %s start %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv[1:]))).encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=stack["repo_root"], env=env,
                                start_new_session=True)
    state = {"pid": proc.pid, "start_time": proc_start_time(proc.pid), "version": version, "env_file": env_file,
             "env_hash": env_hash, "durable": durable, "argv": argv, "started_at": time.time()}
    _write_state(stack, slot, state)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc = proc.poll()
        if rc is not None:
            _write_state(stack, slot, {"pid": None, "version": None, "exit_code": rc, "last_version": version})
            raise SlotError("version %s exited with code %s while starting in slot %s; see %s:\n%s"
                            % (version, rc, slot, s["log"], _tail(s["log"])))
        h = health(s["port"], timeout=0.5)
        if h and h.get("version") == version:
            return dict(status(stack, slot), changed=True, replaced=stopped)
        time.sleep(0.05)
    kill_group(proc.pid)
    raise SlotError("version %s not healthy in slot %s after %.0fs; see %s" % (version, slot, timeout, s["log"]))


def _tail(path, n=15):
    try:
        with open(path, "rb") as fh:
            return b"".join(fh.readlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return ""


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demo.stack.slot", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--stack", default="demo/run/stack.json")
    p.add_argument("--slot", default=None)
    p.add_argument("--version", default=None)
    p.add_argument("--env-file", default=None)
    p.add_argument("--durable", default=None)
    p.add_argument("--deliver", choices=("all", "new"), default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    a = p.parse_args(argv)
    try:
        stack = load_stack(a.stack)
        slots = [a.slot] if a.slot else sorted(stack["slots"])
        for sl in slots:
            if sl not in stack["slots"]:
                raise SlotError("slot %r is not in %s (accepted: %s)" % (sl, a.stack, ", ".join(sorted(stack["slots"]))))
        if a.action == "status":
            out = {sl: status(stack, sl) for sl in slots} if not a.slot else status(stack, a.slot)
            out = dict(out, changed=False) if a.slot else {"slots": out, "changed": False}
        elif a.action == "stop":
            if not a.slot:
                raise SlotError("--slot is required for stop")
            out = stop(stack, a.slot, timeout=a.timeout)
        else:
            if not a.slot or not a.version:
                raise SlotError("--slot and --version are required for start")
            out = start(stack, a.slot, a.version, env_file=a.env_file, durable=a.durable, deliver=a.deliver,
                        force=a.force, timeout=a.timeout)
    except (SlotError, OSError, KeyError, ValueError) as exc:
        json.dump({"failed": True, "changed": False, "msg": str(exc)}, sys.stdout)
        sys.stdout.write("\n")
        return 1
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
