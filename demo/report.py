"""The demo's report: one self-contained HTML file (plots embedded) plus the JSON behind it.

    python -m demo.report --input demo/run/run.json --out demo/run/report
    python -m demo.report --sample --out /tmp/report      # synthetic run, to see the layout

Input (``run.json``, written by demo/run_demo.py; every key optional):

``title``, ``started_at``, ``finished_at`` (epoch s)
``releases``   [{version, outcome: promoted|rolled_back|failed, phases: [{phase, started, ended, result}]}]
``samples``    [{t, slot: stable|canary, version, error_rate (0..1), p50_ms, p95_ms, p99_ms, rps}]
``weights``    [{t, release, phase, step, canary (0..100)}]
``judge``      [{t, release, phase, step, metric, e_value, boundary, verdict: continue|pass|fail}]
``gates``      [{t, release, phase, step, check, observed, threshold, window, passed}]
``rollbacks``  [{release, phase, reason, verdict_at, traffic_restored_at, finished_at,
                 replay: {from_seq, events_replayed, reprocessed_by_stable}}]
``events``     {published, processed_once, lost, duplicates, by_version: {v: n}, replayed}
``retention``  [{phase, expected: {...}, observed: {...}, matches}]
``ledger``     {path, records, verified, message}
``chaos``      [{release, phase, drill, kind, slot, share, success, recovery_s, clients, detail}] (the ledger's
               ``chaos`` entries of the advanced phase's drills)
``chaos_score`` {release, phase, decision, score, min_success, passed, total, reason} (the ledger's ``chaos score``)
``loadgen``    the load generator's report
``decisions``  [{t, release, phase, action, detail}] (from the ledger)
"""
import argparse
import base64
import html
import io
import json
import math
import os
import sys
import time

STABLE_C = "#1f77b4"
CANARY_C = "#d62728"
PHASE_COLOURS = {"staging": "#e8f0fe", "canary": "#fff4e5", "production": "#e6f4ea", "advanced": "#f3e8fd",
                 "rollback": "#fde7e9"}


def _mpl():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _mpl().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _t0(run):
    ts = [s["t"] for s in run.get("samples", [])] + [w["t"] for w in run.get("weights", [])]
    return run.get("started_at") or (min(ts) if ts else time.time())


def _phase_spans(run):
    spans = []
    for rel in run.get("releases", []):
        for ph in rel.get("phases", []):
            if ph.get("started") and ph.get("ended"):
                spans.append((rel.get("version"), ph["phase"], ph["started"], ph["ended"], ph.get("result")))
    return spans


def _shade(ax, run, t0, labels=True):
    ymax = ax.get_ylim()[1]
    for version, phase, start, end, result in _phase_spans(run):
        ax.axvspan(start - t0, end - t0, color=PHASE_COLOURS.get(phase, "#f0f0f0"), zorder=0)
        if labels:
            ax.text((start + end) / 2 - t0, ymax * 0.97, "%s\n%s" % (version, phase), ha="center", va="top",
                    fontsize=7, color="#555")
    for rb in run.get("rollbacks", []):
        if rb.get("verdict_at"):
            ax.axvline(rb["verdict_at"] - t0, color="black", ls="--", lw=1.2, zorder=5)
            ax.text(rb["verdict_at"] - t0, ymax * 0.6, " rollback\n %s" % rb.get("release", ""), fontsize=8,
                    color="black", zorder=6)


def _series(run, slot, key, t0):
    pts = [(s["t"] - t0, s.get(key)) for s in run.get("samples", []) if s.get("slot") == slot]
    pts = sorted((t, v) for t, v in pts if v is not None and not (isinstance(v, float) and math.isnan(v)))
    xs, ys = [], []
    for i, (t, v) in enumerate(pts):
        if i and t - pts[i - 1][0] > 8:  # the slot was empty (no canary): break the line
            xs.append(t - 0.001)
            ys.append(float("nan"))
        xs.append(t)
        ys.append(v)
    return xs, ys


def _weights_axis(ax, run, t0):
    ws = sorted(run.get("weights", []), key=lambda w: w["t"])
    if not ws:
        return
    ax2 = ax.twinx()
    xs = [w["t"] - t0 for w in ws]
    ys = [w.get("canary", 0) for w in ws]
    end = (run.get("finished_at") or ws[-1]["t"]) - t0
    ax2.step(xs + [end], ys + [ys[-1]], where="post", color="#ff7f0e", lw=1.5, alpha=0.8, label="canary weight %")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("canary traffic weight (%)", color="#ff7f0e")
    ax2.tick_params(axis="y", colors="#ff7f0e")
    for x, y in zip(xs, ys):
        ax2.annotate("%d%%" % y, (x, y), textcoords="offset points", xytext=(2, 3), fontsize=7, color="#ff7f0e")
    return ax2


def plot_error_rate(run):
    plt = _mpl()
    t0 = _t0(run)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for slot, colour in (("stable", STABLE_C), ("canary", CANARY_C)):
        xs, ys = _series(run, slot, "error_rate", t0)
        ax.plot(xs, [100 * y for y in ys], color=colour, lw=1.6, label="%s error rate" % slot, marker=".", ms=3)
    for thr, label in ((5, "canary gate 5%"), (1, "production gate 1%")):
        ax.axhline(thr, color="#888", ls=":", lw=1)
        ax.text(0, thr, " " + label, fontsize=7, color="#666", va="bottom")
    ax.set_ylim(0, max(25, ax.get_ylim()[1]))
    ax.set_xlabel("seconds since the demo started")
    ax.set_ylabel("5xx error rate (%)")
    ax.set_title("Error rate: stable vs canary (what the gates and the judge saw)")
    _shade(ax, run, t0)
    ax2 = _weights_axis(ax, run, t0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels() if ax2 else ([], [])
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_latency(run):
    plt = _mpl()
    t0 = _t0(run)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for slot, colour in (("stable", STABLE_C), ("canary", CANARY_C)):
        for key, ls in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
            xs, ys = _series(run, slot, key, t0)
            if xs:
                ax.plot(xs, ys, color=colour, ls=ls, lw=1.3, label="%s %s" % (slot, key.replace("_ms", "")))
    ax.set_yscale("log")
    from matplotlib.ticker import ScalarFormatter
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("seconds since the demo started")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency: stable vs canary (p50 / p95 / p99)")
    _shade(ax, run, t0, labels=False)
    _weights_axis(ax, run, t0)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def plot_judge(run):
    judge = run.get("judge", [])
    if not judge:
        return None
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(11, 3.4))
    groups = {}
    for j in judge:
        groups.setdefault((j.get("release"), j.get("metric", "?")), []).append(j)
    cmap = plt.get_cmap("tab10")
    boundary = None
    for i, ((release, metric), pts) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        pts = sorted(pts, key=lambda p: p["t"])
        xs = list(range(1, len(pts) + 1))
        ys = [math.log10(max(1e-12, float(p.get("e_value") or 1e-12))) for p in pts]
        ax.plot(xs, ys, marker="o", ms=4, color=cmap(i % 10), label="%s %s" % (release, metric))
        for x, y, p in zip(xs, ys, pts):
            if p.get("verdict") in ("fail", "pass"):
                ax.annotate(p["verdict"].upper(), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8,
                            color="black", weight="bold")
        boundary = boundary or next((p.get("boundary") for p in pts if p.get("boundary")), None)
    if boundary:
        ax.axhline(math.log10(boundary), color="black", ls="--", lw=1)
        ax.text(1, math.log10(boundary), " boundary 1/alpha = %g" % boundary, fontsize=8, va="bottom")
    ax.set_xlabel("look (analysis run) number")
    ax.set_ylabel("log10 e-value (evidence canary is worse)")
    ax.set_title("Canary judge: anytime-valid evidence against the canary, look by look")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_events(run):
    ev = run.get("events") or {}
    by_version = ev.get("by_version") or {}
    if not by_version:
        return None
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    names = sorted(by_version)
    colours = [CANARY_C if n == ev.get("bad_version") else "#2ca02c" for n in names]
    ax.bar(names, [by_version[n] for n in names], color=colours)
    for i, n in enumerate(names):
        ax.text(i, by_version[n], str(by_version[n]), ha="center", va="bottom", fontsize=8)
    ax.set_title("Repository events processed, by version")
    ax.set_ylabel("events")
    return _png(fig)


# ----- HTML ---------------------------------------------------------------------------------
def _e(x):
    return html.escape("" if x is None else str(x))


def _fmt(v):
    if isinstance(v, float):
        if v != 0 and abs(v) < 0.01:
            return "%.4g" % v
        return "%.3f" % v if abs(v) < 100 else "%.1f" % v
    return _e(v)


def _badge(ok, yes="PASS", no="FAIL"):
    if ok is None:
        return '<span class="badge grey">n/a</span>'
    return '<span class="badge %s">%s</span>' % ("green" if ok else "red", yes if ok else no)


def _table(headers, rows):
    out = ["<table><tr>%s</tr>" % "".join("<th>%s</th>" % _e(h) for h in headers)]
    for r in rows:
        out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % c for c in r))
    out.append("</table>")
    return "\n".join(out)


def _clock(t, t0):
    if not t:
        return ""
    return "%s (+%.1fs)" % (time.strftime("%H:%M:%S", time.localtime(t)), t - t0)


def summarise(run):
    releases = run.get("releases", [])
    rb = run.get("rollbacks", [])
    ev = run.get("events") or {}
    ledger = run.get("ledger") or {}
    gates = run.get("gates", [])
    return {
        "releases": {r.get("version"): r.get("outcome") for r in releases},
        "phases_passed": {r.get("version"): [p["phase"] for p in r.get("phases", []) if p.get("result") == "promoted"]
                          for r in releases},
        "rollbacks": len(rb),
        "max_rollback_traffic_s": max([r["traffic_restored_at"] - r["verdict_at"] for r in rb
                                       if r.get("traffic_restored_at") and r.get("verdict_at")] or [None],
                                      key=lambda x: -1 if x is None else x),
        "gates_total": len(gates),
        "gates_failed": sum(1 for g in gates if g.get("passed") is False),
        "events_published": ev.get("published"),
        "events_lost": ev.get("lost"),
        "events_duplicates": ev.get("duplicates"),
        "ledger_verified": ledger.get("verified"),
        "duration_s": (run["finished_at"] - run["started_at"]) if run.get("finished_at") and run.get("started_at")
        else None,
    }


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;max-width:1240px}
h1{margin:0 0 4px 0;font-size:26px} h2{border-bottom:2px solid #eee;padding-bottom:4px;margin-top:28px;font-size:19px}
.sub{color:#666;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:170px;background:#fafafa}
.card .k{font-size:12px;color:#666}.card .v{font-size:20px;font-weight:600;margin-top:2px}
.card.good{border-color:#34a853;background:#e6f4ea}.card.bad{border-color:#d93025;background:#fce8e6}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th{background:#f1f3f4;text-align:left;padding:5px 8px;border-bottom:1px solid #ccc}
td{padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;font-weight:700;color:white}
.green{background:#34a853}.red{background:#d93025}.grey{background:#9aa0a6}.amber{background:#f9ab00}
img{max-width:100%;border:1px solid #eee;border-radius:6px;margin:6px 0}
.note{color:#555;font-size:13px}
code{background:#f1f3f4;padding:1px 4px;border-radius:3px}
"""


def render_html(run, images):
    t0 = _t0(run)
    s = summarise(run)
    title = run.get("title") or "stagegate.rollout demo"
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>%s</title><style>%s</style></head><body>"
             % (_e(title), CSS)]
    parts.append("<h1>%s</h1>" % _e(title))
    parts.append("<div class='sub'>%s &middot; %s &middot; real NATS JetStream, Prometheus and HAProxy on one machine</div>"
                 % (_e(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))),
                    "took %.0f s" % s["duration_s"] if s["duration_s"] else ""))
    # headline cards
    cards = []
    for rel in run.get("releases", []):
        outcome = rel.get("outcome")
        passed = [p["phase"] for p in rel.get("phases", []) if p.get("result") == "promoted"]
        good = outcome == "promoted" or (outcome == "rolled_back" and rel.get("expected") == "rolled_back")
        text = {"promoted": "promoted through %s" % " &rarr; ".join(passed),
                "rolled_back": "rolled back at %s" % _e(next((p["phase"] for p in rel.get("phases", [])
                                                             if p.get("result") in ("rolled_back", "failed")), "?"))
                }.get(outcome, _e(outcome))
        cards.append("<div class='card %s'><div class='k'>release %s</div><div class='v'>%s</div></div>"
                     % ("good" if good else "bad", _e(rel.get("version")), text))
    if s["max_rollback_traffic_s"] is not None:
        cards.append("<div class='card %s'><div class='k'>verdict &rarr; canary traffic 0%%</div><div class='v'>%.3f s</div></div>"
                     % ("good" if s["max_rollback_traffic_s"] <= 1 else "bad", s["max_rollback_traffic_s"]))
    if s["events_published"] is not None:
        ok = not s["events_lost"] and not s["events_duplicates"]
        cards.append("<div class='card %s'><div class='k'>events published / lost / duplicated</div>"
                     "<div class='v'>%s / %s / %s</div></div>"
                     % ("good" if ok else "bad", _e(s["events_published"]), _e(s["events_lost"]),
                        _e(s["events_duplicates"])))
    if s["ledger_verified"] is not None:
        cards.append("<div class='card %s'><div class='k'>decision ledger</div><div class='v'>%s</div></div>"
                     % ("good" if s["ledger_verified"] else "bad", "verified" if s["ledger_verified"] else "BROKEN"))
    cards.append("<div class='card'><div class='k'>gate checks (failed)</div><div class='v'>%d (%d)</div></div>"
                 % (s["gates_total"], s["gates_failed"]))
    parts.append("<div class='cards'>%s</div>" % "".join(cards))
    parts.append("<p class='note'>How to read this: traffic enters HAProxy and is split between the <b style='color:%s'>stable</b> "
                 "slot and the <b style='color:%s'>canary</b> slot by weight (orange steps). After each step the gates "
                 "compare the canary with its thresholds and the judge accumulates evidence; a gate failure or judge "
                 "<code>fail</code> sends all traffic back to stable (dashed line), turns the new flags off and replays "
                 "JetStream so the stable version reprocesses what the bad one handled.</p>" % (STABLE_C, CANARY_C))

    parts.append("<h2>Error rate over time</h2><img alt='error rate plot' src='data:image/png;base64,%s'>" % images["error_rate"])
    parts.append("<h2>Latency over time</h2><img alt='latency plot' src='data:image/png;base64,%s'>" % images["latency"])
    if images.get("judge"):
        parts.append("<h2>Canary judge evidence</h2><img alt='judge plot' src='data:image/png;base64,%s'>" % images["judge"])
        rows = [[_e(j.get("release")), _e(j.get("phase")), _e(j.get("step")), _e(j.get("metric")), _fmt(j.get("e_value")),
                 _fmt(j.get("boundary")), "<b>%s</b>" % _e(j.get("verdict")), _e(_clock(j.get("t"), t0))]
                for j in run.get("judge", [])]
        parts.append(_table(["release", "phase", "step", "metric", "e-value", "boundary", "verdict", "at"], rows))

    # weights
    if run.get("weights"):
        rows = [[_e(_clock(w["t"], t0)), _e(w.get("release")), _e(w.get("phase")), _e(w.get("step")),
                 "%s%%" % _e(w.get("canary"))] for w in run["weights"]]
        parts.append("<h2>Traffic weight steps</h2>" + _table(["at", "release", "phase", "step", "canary weight"], rows))

    # gates
    if run.get("gates"):
        rows = [[_e(g.get("release")), _e(g.get("phase")), _e(g.get("step")), _e(g.get("check")), _fmt(g.get("observed")),
                 _e(g.get("threshold")), _e(g.get("window")), _badge(g.get("passed"))] for g in run["gates"]]
        parts.append("<h2>Gates and their observed values</h2>" +
                     _table(["release", "phase", "step", "check", "observed", "threshold", "window", "result"], rows))

    # rollbacks
    if run.get("rollbacks"):
        rows = []
        for r in run["rollbacks"]:
            rep = r.get("replay") or {}
            traffic = (r["traffic_restored_at"] - r["verdict_at"]) if r.get("traffic_restored_at") and r.get("verdict_at") else None
            total = (r["finished_at"] - r["verdict_at"]) if r.get("finished_at") and r.get("verdict_at") else None
            rows.append([_e(r.get("release")), _e(r.get("phase")), _e(r.get("reason")), _e(_clock(r.get("verdict_at"), t0)),
                         "%.3f s" % traffic if traffic is not None else "?",
                         "%.1f s" % total if total is not None else "?",
                         _e(rep.get("events_replayed")), _e(rep.get("reprocessed_by_stable"))])
        parts.append("<h2>Rollback</h2>" + _table(["release", "phase", "reason", "verdict at", "traffic to stable",
                                                   "rollback done", "events replayed", "reprocessed by stable"], rows))

    # events
    ev = run.get("events") or {}
    if ev:
        parts.append("<h2>Repository events (JetStream)</h2>")
        rows = [[_e(k), _e(v if not isinstance(v, dict) else json.dumps(v, sort_keys=True))] for k, v in sorted(ev.items())]
        parts.append(_table(["", "count"], rows))
        if images.get("events"):
            parts.append("<img alt='events plot' src='data:image/png;base64,%s' style='max-width:560px'>" % images["events"])

    if run.get("retention"):
        rows = [[_e(r.get("phase")), _e(json.dumps(r.get("expected"), sort_keys=True)),
                 _e(json.dumps(r.get("observed"), sort_keys=True)), _badge(r.get("matches"), "MATCH", "DIFFERS")]
                for r in run["retention"]]
        parts.append("<h2>JetStream retention per phase</h2>" + _table(["phase", "inventory", "observed", ""], rows))

    if run.get("chaos"):
        rows = [[_e(c.get("release")), _e(c.get("drill")), _e(c.get("kind")), _badge(c.get("success")),
                 _fmt(c.get("recovery_s")), _e(c.get("detail"))] for c in run["chaos"]]
        score = run.get("chaos_score") or {}
        if score.get("score") is not None:
            head = "Chaos drills of the advanced phase (%s/%s recovered = %.0f%%, at least %.0f%% to promote: %s)" % (
                score.get("passed"), score.get("total"), 100.0 * float(score["score"]),
                100.0 * float(score.get("min_success") or 0), _e(str(score.get("decision")).upper()))
        else:
            head = "Chaos drills of the advanced phase (no score in the ledger)"
        parts.append("<h2>%s</h2>" % head
                     + _table(["release", "drill", "kind", "result", "recovery (s)", "detail"], rows))

    if run.get("releases"):
        rows = []
        for rel in run["releases"]:
            for p in rel.get("phases", []):
                dur = p["ended"] - p["started"] if p.get("ended") and p.get("started") else None
                badge = _badge(p.get("result") == "promoted", "PROMOTED", _e(p.get("result", "")).upper())
                rows.append([_e(rel.get("version")), _e(p.get("phase")), _e(_clock(p.get("started"), t0)),
                             "%.1f s" % dur if dur is not None else "", badge])
        parts.append("<h2>Phases</h2>" + _table(["release", "phase", "started", "took", "result"], rows))

    if run.get("decisions"):
        rows = [[_e(_clock(d.get("t"), t0)), _e(d.get("release")), _e(d.get("phase")), _e(d.get("action")),
                 _e(d.get("detail"))] for d in run["decisions"]]
        parts.append("<h2>Decisions (from the ledger)</h2>" + _table(["at", "release", "phase", "action", "detail"], rows))

    led = run.get("ledger") or {}
    if led:
        parts.append("<h2>Ledger verification</h2><p>%s <code>%s</code> &mdash; %s records. %s</p>"
                     % (_badge(led.get("verified"), "VERIFIED", "BROKEN"), _e(led.get("path")), _e(led.get("records")),
                        _e(led.get("message"))))
    lg = run.get("loadgen")
    if lg:
        rows = [[_e(v), _e(st.get("requests")), _e(st.get("errors")), _fmt(st.get("error_rate")),
                 _e((st.get("latency_ms") or {}).get("p50")), _e((st.get("latency_ms") or {}).get("p95")),
                 _e((st.get("latency_ms") or {}).get("p99"))] for v, st in sorted((lg.get("by_version") or {}).items())]
        parts.append("<h2>What the load generator saw (through HAProxy)</h2>" +
                     _table(["answered by", "requests", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms"], rows))
    parts.append("<p class='note'>Generated by <code>demo/report.py</code> from <code>report.json</code> next to this file.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build(run, out_dir):
    """Write ``report.html`` and ``report.json`` to ``out_dir``; return the HTML path."""
    os.makedirs(out_dir, exist_ok=True)
    images = {"error_rate": plot_error_rate(run), "latency": plot_latency(run), "judge": plot_judge(run),
              "events": plot_events(run)}
    doc = render_html(run, images)
    html_path = os.path.join(out_dir, "report.html")
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(doc)
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as fh:
        json.dump(dict(run, summary=summarise(run)), fh, indent=2, sort_keys=True, default=str)
    return html_path


def sample_run(seed=7):
    """A synthetic run with the shape run_demo.py writes (for the layout and the render test)."""
    import random
    rng = random.Random(seed)
    t0 = 1_800_000_000.0
    run = {"title": "stagegate.rollout demo (sample data)", "started_at": t0, "samples": [], "weights": [],
           "judge": [], "gates": [], "releases": [], "rollbacks": []}
    t = t0
    phases_v2 = [("staging", 20), ("canary", 80), ("production", 40), ("advanced", 30)]
    rel = {"version": "v2", "outcome": "promoted", "phases": []}
    canary_version = None
    weight = 0
    for phase, dur in phases_v2:
        rel["phases"].append({"phase": phase, "started": t, "ended": t + dur, "result": "promoted"})
        steps = [10, 25, 50, 100] if phase == "canary" else []
        for i, w in enumerate(steps):
            run["weights"].append({"t": t + i * dur / 4, "release": "v2", "phase": phase, "step": i + 1, "canary": w})
            run["gates"].append({"t": t + (i + 1) * dur / 4, "release": "v2", "phase": phase, "step": i + 1,
                                 "check": "error rate", "observed": 0.004 + rng.random() * 0.004,
                                 "threshold": "< 0.05", "window": "20s", "passed": True})
            run["judge"].append({"t": t + (i + 1) * dur / 4, "release": "v2", "phase": phase, "step": i + 1,
                                 "metric": "error_rate", "e_value": 0.5 + rng.random(), "boundary": 100,
                                 "verdict": "pass" if w == 100 else "continue"})
        for k in range(int(dur)):
            weight = next((w["canary"] for w in reversed(run["weights"]) if w["t"] <= t + k), 0)
            for slot, v in (("stable", "v1"), ("canary", "v2")):
                if slot == "canary" and phase == "staging":
                    continue
                run["samples"].append({"t": t + k, "slot": slot, "version": v,
                                       "error_rate": max(0, 0.005 + rng.gauss(0, 0.003)),
                                       "p50_ms": 2 + rng.random(), "p95_ms": 8 + 3 * rng.random(),
                                       "p99_ms": 20 + 10 * rng.random(), "rps": 50 * (weight if slot == "canary" else 100 - weight) / 100})
        t += dur
    run["releases"].append(rel)
    run["weights"].append({"t": t, "release": "v2", "phase": "promote", "step": 0, "canary": 0})
    rel3 = {"version": "v3", "outcome": "rolled_back", "expected": "rolled_back",
            "phases": [{"phase": "staging", "started": t, "ended": t + 20, "result": "promoted"}]}
    t += 20
    rel3["phases"].append({"phase": "canary", "started": t, "ended": t + 35, "result": "rolled_back"})
    run["weights"].append({"t": t, "release": "v3", "phase": "canary", "step": 1, "canary": 10})
    e = 1.0
    for k in range(30):
        for slot, v, er in (("stable", "v2", 0.005), ("canary", "v3", 0.2)):
            run["samples"].append({"t": t + k, "slot": slot, "version": v, "error_rate": max(0, er + rng.gauss(0, 0.02)),
                                   "p50_ms": 2, "p95_ms": 9, "p99_ms": 25, "rps": 45 if slot == "stable" else 5})
        if k % 5 == 4 and e < 100:
            e *= 8
            run["judge"].append({"t": t + k, "release": "v3", "phase": "canary", "step": 1, "metric": "error_rate",
                                 "e_value": e, "boundary": 100, "verdict": "fail" if e >= 100 else "continue"})
    verdict = t + 15
    run["gates"].append({"t": verdict, "release": "v3", "phase": "canary", "step": 1, "check": "error rate",
                         "observed": 0.196, "threshold": "< 0.05", "window": "20s", "passed": False})
    run["weights"].append({"t": verdict + 0.08, "release": "v3", "phase": "rollback", "step": 0, "canary": 0})
    run["rollbacks"].append({"release": "v3", "phase": "canary", "reason": "judge fail (error_rate e=512 >= 100)",
                             "verdict_at": verdict, "traffic_restored_at": verdict + 0.08, "finished_at": verdict + 6,
                             "replay": {"from_seq": 812, "events_replayed": 140, "reprocessed_by_stable": 14}})
    run["releases"].append(rel3)
    run["finished_at"] = t + 35
    run["events"] = {"published": 1203, "processed_once": 1203, "lost": 0, "duplicates": 0, "replayed": 140,
                     "by_version": {"v1": 512, "v2": 677, "v3": 14}, "bad_version": "v3"}
    run["retention"] = [
        {"phase": "canary", "expected": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
         "observed": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1}, "matches": True},
        {"phase": "production", "expected": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
         "observed": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"}, "matches": True}]
    run["ledger"] = {"path": "demo/run/ledger.jsonl", "records": 57, "verified": True, "message": "hash chain intact"}
    run["chaos"] = [
        {"release": "v2", "phase": "advanced", "drill": "kill the canary", "kind": "kill_slot", "success": True,
         "recovery_s": 1.9, "detail": "canary org-brain-canary on localhost SIGKILLed: running again, HAProxy sees it"},
        {"release": "v2", "phase": "advanced", "drill": "freeze a consumer", "kind": "freeze_consumer",
         "success": True, "recovery_s": 3.4, "detail": "JetStream consumer drained"},
        {"release": "v2", "phase": "advanced", "drill": "metrics unreachable", "kind": "metrics_unreachable",
         "success": True, "recovery_s": None, "detail": "the stable error rate gate failed closed (fail)"}]
    run["chaos_score"] = {"release": "v2", "phase": "advanced", "decision": "pass", "score": 1.0,
                          "min_success": 0.95, "passed": 3, "total": 3, "reason": "3 of 3 drill(s) recovered"}
    run["decisions"] = [{"t": verdict, "release": "v3", "phase": "canary", "action": "rollback",
                         "detail": "error rate 19.6% > 5%"}]
    return run


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demo.report", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--input", help="run.json written by the demo runner")
    p.add_argument("--sample", action="store_true", help="use synthetic data")
    p.add_argument("--out", required=True, help="output directory")
    a = p.parse_args(argv)
    if a.sample:
        run = sample_run()
    elif a.input:
        with open(a.input, encoding="utf-8") as fh:
            run = json.load(fh)
    else:
        p.error("--input or --sample is required")
    path = build(run, a.out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
