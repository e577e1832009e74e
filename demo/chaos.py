"""Chaos drills against the local demo stack: each breaks one real component and checks the recovery.

* ``kill_canary`` — the canary slot runs the promoted version with ~10 % of the traffic and
  is SIGKILLed (``demo.stack.slot.kill``); supervisord must start it again on its own
  (``autorestart``) and it must be healthy and UP in HAProxy again, with almost no
  client-visible error meanwhile (HAProxy's ``option redispatch``, ``retry-on`` layer-7 retries, its health
  check). The recovery time is from the kill to the new process answering ``/healthz``
  and HAProxy seeing it UP. After the advanced phase the canary slot is stopped (the
  release runs in the stable slot), so the drill starts it from the program the
  collection's ``deploy_hosts`` left in supervisord (the canary of the last advanced
  batch: the same version and flags as the stable slot) with ``supervisorctl start``,
  gives it 10 % of the traffic, and afterwards puts the weights back and stops it again
  (``supervisorctl stop``), as the phase left it. We chose the canary over the stable
  slot: killing the slot that carries all the traffic has no other server to redispatch
  to, so it would measure HAProxy's retries rather than the recovery.
* ``restart_nats`` — nats-server is stopped and started again (same store): the
  services' consumers reconnect and an event published after the restart is
  processed within the freshness SLO (10 s).
* ``stall_prometheus`` — Prometheus is frozen (SIGSTOP): a gate query must fail
  closed (error / no data, never a pass); after SIGCONT queries answer again.

Each drill returns ``{"drill", "success", "recovery_s", "detail"}``.
"""
import json
import os
import signal
import subprocess
import time
import urllib.request
from urllib.parse import urlencode

from demo.stack import slot as slots
from demo.stack.haproxy import runtime_command


def _haproxy(info, cmd):
    return runtime_command(info["haproxy"]["socket_path"], cmd)


def server_status(info, server):
    """HAProxy's status of ``app/<server>`` (UP, DOWN, MAINT, ...)."""
    backend = info["haproxy"]["backend"]
    for line in _haproxy(info, "show stat").splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == backend and f[1] == server:
            return f[17]
    return None


def _wait(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(interval)
    return False


def _supervisorctl(info, *args, timeout=30):
    sup = info["supervisor"]
    return subprocess.run([sup["supervisorctl"], "-c", sup["conf"]] + list(args), capture_output=True, text=True,
                          timeout=timeout, check=False)


def kill_canary(info, loadgen, version):
    """SIGKILL a 10 % canary of ``version``: supervisord restarts it, HAProxy routes around it meanwhile."""
    backend, srv = info["haproxy"]["backend"], info["haproxy"]["servers"]
    program = info["slots"]["canary"]["program"]
    weights_before = {n: int(_haproxy(info, "get weight %s/%s" % (backend, srv[n])).split()[0]) for n in ("stable", "canary")}
    started_here = False
    fail = {"drill": "kill canary", "success": False, "recovery_s": None}
    try:
        if not slots.status(info, "canary")["healthy"]:
            res = _supervisorctl(info, "start", program)
            started_here = True
            if not _wait(lambda: slots.status(info, "canary")["healthy"], 20, 0.2):
                return dict(fail, detail="the canary slot did not start healthy (supervisorctl start %s: %s)"
                            % (program, (res.stdout + res.stderr).strip()[:200]))
        running = slots.status(info, "canary")["version"]
        _haproxy(info, "set weight %s/%s 11" % (backend, srv["canary"]))
        _haproxy(info, "set weight %s/%s 100" % (backend, srv["stable"]))
        if not _wait(lambda: server_status(info, srv["canary"]) == "UP", 10):
            return dict(fail, detail="the canary never UP in HAProxy")
        time.sleep(2)
        t_kill = time.monotonic()
        killed = slots.kill(info, "canary", signal.SIGKILL)
        if not killed:
            return dict(fail, detail="no canary process to kill")
        seen_down = [None]

        def back():
            st = server_status(info, srv["canary"]) or ""
            if st.startswith("DOWN") and seen_down[0] is None:
                seen_down[0] = time.monotonic() - t_kill
            if st != "UP":
                return False
            h = slots.health(info["slots"]["canary"]["port"]) or {}
            return h.get("status") == "ok" and h.get("pid") not in (None, killed)
        ok_back = _wait(back, 30, 0.1)
        recovery = time.monotonic() - t_kill
        new_pid = slots.pid(info, "canary")
        time.sleep(0.5)
        window = loadgen.window(time.monotonic() - t_kill + 0.5) if loadgen else {}
        total = sum(v["requests"] for v in window.values())
        errors = sum(v["errors"] for v in window.values())
        err_rate = errors / total if total else 0.0
        ok = bool(ok_back) and err_rate <= 0.02
        down = ("HAProxy marked it DOWN after %.2f s" % seen_down[0] if seen_down[0] is not None
                else "back before HAProxy's health check marked it DOWN")
        return {"drill": "kill canary", "success": ok, "recovery_s": round(recovery, 3),
                "detail": "canary %s (pid %s) SIGKILLed; supervisord restarted it (pid %s), healthy and UP after "
                          "%.2f s: %s; %d/%d client errors meanwhile"
                          % (running, killed, new_pid, recovery, down if ok_back else "NOT back", errors, total)}
    finally:
        for n in ("stable", "canary"):
            _haproxy(info, "set weight %s/%s %d" % (backend, srv[n], weights_before[n]))
        if started_here:
            time.sleep(0.5)  # let the canary's in-flight requests finish
            _supervisorctl(info, "stop", program)


def restart_nats(info, nats, timeout=45.0):
    """Restart nats-server; an event published after it must be processed within the 10 s SLO.

    ``timeout`` bounds the wait for the first event published after the restart (the load generator's
    publisher reconnects on its own schedule); the SLO is the lag of that event's processing."""
    publish_file = info["publish_file"]
    t0 = time.time()
    nats.restart()
    t_up = time.time()

    def processed_after():
        if not os.path.exists(publish_file):
            return False
        with open(publish_file, "rb") as fh:
            fh.seek(max(0, os.path.getsize(publish_file) - 200000))
            for line in fh.read().decode("utf-8", "replace").splitlines()[1:]:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("event_ts", 0) > t_up and rec.get("durable") == info["nats"]["durable"]:
                    return rec
        return False
    rec = None
    deadline = time.time() + timeout
    while time.time() < deadline and not rec:
        rec = processed_after()
        time.sleep(0.1)
    recovery = time.time() - t0
    ok = bool(rec) and rec["lag_s"] < 10
    return {"drill": "restart NATS", "success": ok, "recovery_s": round(recovery, 3),
            "detail": ("restart took %.2f s; first event published after it processed by %s after %.2f s lag"
                       % (t_up - t0, rec["version"], rec["lag_s"])) if rec else "no event processed after the restart"}


def _gate_query(url, timeout=2.0):
    q = 'sum(rate(demo_http_requests_total{job="demo"}[15s]))'
    with urllib.request.urlopen("%s/api/v1/query?%s" % (url, urlencode({"query": q})), timeout=timeout) as r:
        res = json.loads(r.read())["data"]["result"]
    if not res:
        raise LookupError("no data")
    return float(res[0]["value"][1])


def stall_prometheus(info, prometheus, stall_s=3.0):
    """Freeze Prometheus: the gate query must fail closed; after resuming it must answer again."""
    url = info["prometheus"]["url"]
    prometheus.pause()
    t0 = time.monotonic()
    try:
        try:
            _gate_query(url, timeout=1.0)
            failed_closed = False
            during = "a query answered while Prometheus was frozen"
        except Exception as exc:
            failed_closed = True
            during = "gate query failed closed (%s)" % exc.__class__.__name__
        time.sleep(max(0.0, stall_s - (time.monotonic() - t0)))
    finally:
        prometheus.resume()
    t_resume = time.monotonic()
    back = _wait(lambda: _gate_query(url) > 0, 15, 0.25)
    recovery = time.monotonic() - t_resume
    return {"drill": "stall Prometheus", "success": failed_closed and back, "recovery_s": round(recovery, 3),
            "detail": "%s; answering again %.2f s after resume" % (during, recovery)}


def _restart_and_refresh(info, stack):
    try:
        return restart_nats(info, stack.nats)
    finally:
        stack.refresh()  # the new nats-server pid goes into stack.json


def run_all(info, stack, loadgen, version, say=print):
    results = []
    for name, fn in (("kill canary", lambda: kill_canary(info, loadgen, version)),
                     ("restart NATS", lambda: _restart_and_refresh(info, stack)),
                     ("stall Prometheus", lambda: stall_prometheus(info, stack.prometheus))):
        say("CHAOS    %s ..." % name)
        try:
            r = fn()
        except Exception as exc:
            r = {"drill": name, "success": False, "recovery_s": None, "detail": "drill raised %r" % exc}
        say("CHAOS    %s: %s — %s" % (name, "recovered" if r["success"] else "FAILED", r["detail"]))
        results.append(r)
    return results
