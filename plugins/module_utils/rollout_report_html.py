# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout report as one self-contained HTML file: inline CSS, plots drawn as inline SVG here (no
JavaScript, no network, no plotting library on the controller).

:func:`render_html` takes the model of ``rollout_report.build_model``. Every section is always there (with
"nothing recorded" when the ledger has nothing for it): ``summary``, ``phases``, ``metrics``, ``judge``,
``gates``, ``rollbacks``, ``retention``, ``drills``, ``ledger``. Every plot is an ``<svg class="plot"
data-plot="...">``. The output depends only on the model (no clock), so the same model gives the same bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html
import json
import math

SECTIONS = (("summary", "Summary"), ("phases", "Phases and their timeline"),
            ("metrics", "Stable vs canary: error rate and p99 latency"), ("judge", "Canary judge: e-values and boundaries"),
            ("gates", "Gates: observed values and thresholds"), ("rollbacks", "Rollbacks and their timing"),
            ("retention", "JetStream retention and replay"), ("drills", "Chaos drills and sentinels"),
            ("ledger", "Ledger verification"))
STABLE_C, CANARY_C, WEIGHT_C, PASS_C, FAIL_C, WARN_C = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#d62728", "#ff7f0e"
DECISION_C = {"pass": PASS_C, "continue": PASS_C, "promote": PASS_C, "start": STABLE_C, "rollback": FAIL_C,
              "rolled_back": FAIL_C, "rollback_incomplete": FAIL_C, "aborted": WARN_C, "pause": WARN_C}
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;
min-width:140px}.card .k{font-size:12px;color:#666}.card .v{font-size:18px;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f5f5f5}.ok{color:#2ca02c;font-weight:600}
.bad{color:#d62728;font-weight:600}.muted{color:#777}.note{background:#fff4e5;border:1px solid #f0c36d;
padding:6px 10px;border-radius:4px;font-size:13px}code{font-size:12px;word-break:break-all}
svg.plot{display:block;margin:6px 0;background:#fff}svg text{font-family:Helvetica,Arial,sans-serif}
"""


def _e(value):
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 0.001 or abs(v) >= 1e6):
            return "%.3g" % v
        return ("%.4f" % v).rstrip("0").rstrip(".")
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _badge(ok, yes="PASS", no="FAIL"):
    if ok is None:
        return '<span class="muted">-</span>'
    return '<span class="%s">%s</span>' % ("ok" if ok else "bad", yes if ok else no)


def _table(headers, rows, raw=()):
    """``raw``: indexes of columns holding HTML already."""
    out = ["<table><tr>%s</tr>" % "".join("<th>%s</th>" % _e(h) for h in headers)]
    for row in rows:
        out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % (c if i in raw else _e(_fmt(c))) for i, c in enumerate(row)))
    out.append("</table>")
    return "".join(out)


def _clock(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S") if t is not None else "-"


def _nothing(what):
    return '<p class="muted">%s</p>' % _e(what)


# ---------------------------------------------------------------- SVG

class Axes(object):
    """A plot area with a linear x axis and a linear or log10 y axis (and an optional 0..100 % right axis)."""

    def __init__(self, x0, x1, y0, y1, log=False, width=900, height=250, left=64, right=52, top=26, bottom=34):
        self.x0, self.x1 = float(x0), float(x1) if x1 > x0 else float(x0) + 1.0
        self.log = log
        if log:
            y0, y1 = math.log10(y0), math.log10(y1)
        self.y0, self.y1 = float(y0), float(y1) if y1 > y0 else float(y0) + 1.0
        self.w, self.h, self.l, self.r, self.t, self.b = width, height, left, right, top, bottom

    def x(self, v):
        return self.l + (v - self.x0) / (self.x1 - self.x0) * (self.w - self.l - self.r)

    def y(self, v):
        if self.log:
            v = math.log10(max(v, 10 ** self.y0))
        v = min(max(v, self.y0), self.y1)
        return self.h - self.b - (v - self.y0) / (self.y1 - self.y0) * (self.h - self.t - self.b)

    def y_pct(self, v):
        return self.h - self.b - max(0.0, min(100.0, v)) / 100.0 * (self.h - self.t - self.b)


def _svg_open(plot, ax, title):
    return ['<svg class="plot" data-plot="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" role="img"><title>%s</title>' % (_e(plot), ax.w, ax.h, ax.w, ax.h, _e(title)),
            '<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>'
            % (ax.l, ax.t, ax.w - ax.l - ax.r, ax.h - ax.t - ax.b),
            '<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>' % (ax.l, _e(title))]


def _y_ticks(ax, fmt):
    out = []
    if ax.log:
        decades = list(range(int(math.ceil(ax.y0)), int(math.floor(ax.y1)) + 1))
        values = [10 ** e for e in decades[::max(1, (len(decades) + 7) // 8)]]
    else:
        values = [ax.y0 + (ax.y1 - ax.y0) * i / 4.0 for i in range(5)]
    for v in values:
        y = ax.y(v)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>' % (ax.l, ax.w - ax.r, y, y))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>' % (ax.l - 4, y + 4, _e(fmt(v))))
    return out


def _x_ticks(ax, ticks):
    out = []
    for v, label in ticks:
        x = ax.x(v)
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e4e4e4"/>' % (x, x, ax.t, ax.h - ax.b))
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>' % (x, ax.h - ax.b + 15, _e(label)))
    return out


def _time_ticks(x0, x1, n=6):
    return [(x0 + (x1 - x0) * i / float(n - 1), _clock(x0 + (x1 - x0) * i / float(n - 1))) for i in range(n)]


def _polyline(ax, points, colour, dash=None, width=2, name=""):
    pts = " ".join("%.1f,%.1f" % (ax.x(t), ax.y(v)) for t, v in points)
    return '<polyline data-series="%s" points="%s" fill="none" stroke="%s" stroke-width="%s"%s/>' % (
        _e(name), pts, colour, width, ' stroke-dasharray="%s"' % dash if dash else "")


def _markers(ax, points, colour, name=""):
    return "".join('<circle data-series="%s" cx="%.1f" cy="%.1f" r="4" fill="%s"/>' % (_e(name), ax.x(t), ax.y(v), colour)
                   for t, v in points)


def _weights_path(ax, weights):
    """The canary weight as a step line on the right axis (0..100 %)."""
    if not weights:
        return []
    d, prev = [], None
    for t, w in weights:
        x, y = ax.x(min(max(t, ax.x0), ax.x1)), ax.y_pct(w)
        d.append(("M%.1f,%.1f" % (x, y)) if prev is None else ("H%.1fV%.1f" % (x, y)))
        prev = y
    d.append("H%.1f" % (ax.w - ax.r))
    out = ['<path data-series="canary weight" d="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="5,3"/>'
           % ("".join(d), WEIGHT_C)]
    for v in (0, 50, 100):
        out.append('<text x="%d" y="%.1f" font-size="10" fill="%s">%d %%</text>' % (ax.w - ax.r + 4, ax.y_pct(v) + 4, WEIGHT_C, v))
    return out


def _legend(ax, items):
    """At the top right, above the plot area."""
    out, x = [], ax.w - ax.r - sum(30 + 7 * len(label) for label, dummy, dummy2 in items)
    for label, colour, dash in items:
        out.append('<line x1="%d" x2="%d" y1="12" y2="12" stroke="%s" stroke-width="2"%s/>'
                   % (x, x + 18, colour, ' stroke-dasharray="5,3"' if dash else ""))
        out.append('<text x="%d" y="16" font-size="11">%s</text>' % (x + 22, _e(label)))
        x += 30 + 7 * len(label)
    return out


def time_plot(plot, title, series, x0, x1, weights=None, fmt=None):
    """Lines over time (``series``: [(label, colour, [[t, v]])]) with the canary weight steps."""
    values = [v for dummy, dummy2, pts in series for dummy3, v in pts]
    top = max(values) * 1.15 if values and max(values) > 0 else 1.0
    ax = Axes(x0, x1, 0.0, top)
    fmt = fmt or _fmt
    out = _svg_open(plot, ax, title) + _y_ticks(ax, fmt) + _x_ticks(ax, _time_ticks(ax.x0, ax.x1))
    for label, colour, pts in series:
        if pts:
            out.append(_polyline(ax, pts, colour, name=label))
    out += _weights_path(ax, weights)
    out += _legend(ax, [(label, colour, False) for label, colour, dummy in series]
                   + ([("canary weight %", WEIGHT_C, True)] if weights else []))
    out.append("</svg>")
    return "".join(out)


def judge_plot(judge):
    """Per judged step the e-values (log scale) against the fail and pass boundaries."""
    rows = [j for j in judge if isinstance(j.get("e_fail"), (int, float)) or isinstance(j.get("e_pass"), (int, float))]
    if not rows:
        return ""

    finite = [float(j[k]) for j in rows for k in ("e_fail", "e_pass", "fail_threshold", "pass_threshold")
              if isinstance(j.get(k), (int, float)) and j[k] > 0] or [1.0]
    top = max(finite + [100.0]) * 10.0  # an infinite e-value is drawn at the top

    def val(v):
        if v == "inf":
            return top
        return float(v) if isinstance(v, (int, float)) and v > 0 else None
    ax = Axes(0.5, len(rows) + 0.5, min(finite + [0.1]) / 2.0, top * 2.0, log=True, height=260)
    ticks = []
    for i, j in enumerate(rows):
        weight = " (%s %%)" % _fmt(j["weight"]) if j.get("weight") is not None else ""
        ticks.append((i + 1, "step %s%s" % (j.get("step") or i + 1, weight)))
    out = _svg_open("judge", ax, "e-values per canary step (log scale)") + _y_ticks(ax, lambda v: "%g" % v)
    out += _x_ticks(ax, ticks)
    for key, colour, dash, label in (("fail_threshold", FAIL_C, "6,3", "fail boundary 1/alpha"),
                                     ("pass_threshold", PASS_C, "6,3", "pass boundary"),
                                     ("e_fail", FAIL_C, None, "e_fail"), ("e_pass", PASS_C, None, "e_pass")):
        kept = [(i + 1, j) for i, j in enumerate(rows) if val(j.get(key)) is not None]
        pts = [(x, val(j.get(key))) for x, j in kept]
        if not pts:
            continue
        if dash:  # a boundary: a short horizontal segment per step
            for x, v in pts:
                out.append('<line data-series="%s" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" '
                           'stroke-dasharray="%s"/>' % (label, ax.x(x - 0.4), ax.x(x + 0.4), ax.y(v), ax.y(v), colour, dash))
        else:
            out.append(_markers(ax, pts, colour, name=label))
            out += ['<text x="%.1f" y="%.1f" font-size="11" fill="%s">%s</text>'
                    % (ax.x(x) + 7, ax.y(val(j[key])) + 4, colour, _e(_fmt(j[key]))) for x, j in kept]
    out += _legend(ax, [("e_fail", FAIL_C, False), ("e_pass", PASS_C, False), ("boundaries", "#555", True)])
    out.append("</svg>")
    return "".join(out)


def gate_bar(plot, result):
    """One check: its observed value as a bar, its threshold as a line."""
    obs, thr = result.get("observed"), result.get("threshold_value")
    obs = obs if isinstance(obs, (int, float)) else None
    thr = thr if isinstance(thr, (int, float)) else None
    top = max([abs(v) for v in (obs, thr) if v is not None] or [1.0]) * 1.3 or 1.0
    w, h, left, right = 320, 22, 4, 4
    scale = (w - left - right) / top
    colour = PASS_C if result.get("passed") else FAIL_C if result.get("passed") is False else WEIGHT_C
    out = ['<svg class="plot" data-plot="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (_e(plot), w, h, w, h), '<rect x="0" y="0" width="%d" height="%d" fill="#f3f3f3"/>' % (w, h)]
    if obs is not None:
        out.append('<rect data-series="observed" x="%d" y="5" width="%.1f" height="12" fill="%s"/>'
                   % (left, max(1.0, abs(obs) * scale), colour))
    if thr is not None:
        x = left + abs(thr) * scale
        out.append('<line data-series="threshold" x1="%.1f" x2="%.1f" y1="1" y2="%d" stroke="#222" stroke-width="2"/>'
                   % (x, x, h - 1))
    out.append("</svg>")
    return "".join(out)


def timeline_plot(plot, events, x0, x1):
    """The events of a phase on a time line, coloured by decision."""
    ax = Axes(x0, x1, 0, 1, height=70, top=22, bottom=24)
    out = ['<svg class="plot" data-plot="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (_e(plot), ax.w, ax.h, ax.w, ax.h),
           '<line x1="%d" x2="%d" y1="35" y2="35" stroke="#999"/>' % (ax.l, ax.w - ax.r)]
    out += [s for s in _x_ticks(ax, _time_ticks(ax.x0, ax.x1)) if s.startswith("<text")]
    for i, ev in enumerate(events):
        if ev.get("t") is None:
            continue
        colour = DECISION_C.get(ev.get("decision") or "", DECISION_C.get(ev.get("event"), WEIGHT_C))
        x = ax.x(ev["t"])
        tip = "seq %s %s %s %s" % (ev.get("seq"), ev["event"], ev.get("step") or "", ev.get("decision") or "")
        out.append('<circle data-event="%s" cx="%.1f" cy="35" r="6" fill="%s"><title>%s</title></circle>'
                   % (_e(ev["event"]), x, colour, _e(tip)))
        out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>'
                   % (x, 18 if i % 2 == 0 else 56, _e(ev["event"])))
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------- sections

def _summary(m):
    s = m["summary"]
    cards = [("release", s["release"]), ("outcome", s["outcome"]),
             ("phases passed", ", ".join(s["phases_passed"]) or "none"),
             ("phases started", ", ".join(s["phases_started"]) or "none"),
             ("ledger verified", {True: "yes", False: "NO", None: "not checked"}[s["ledger_verified"]]),
             ("rollbacks", s["rollbacks"]), ("gate checks failed", s["gate_checks_failed"]),
             ("judged steps", s["judge_steps"]), ("ledger entries", s["entries"])]
    span = m["span"]
    return ('<div class="cards">%s</div><p class="muted">from %s to %s (UTC)</p>'
            % ("".join('<div class="card" data-card="%s"><div class="k">%s</div><div class="v">%s</div></div>'
                       % (_e(k), _e(k), _e(_fmt(v))) for k, v in cards), _e(span["start_ts"]), _e(span["end_ts"])))


def _phases(m):
    if not m["phases"]:
        return _nothing("The ledger has no entries of this release.")
    out = []
    for p in m["phases"]:
        ts = [e["t"] for e in p["events"] if e.get("t") is not None]
        out.append("<h3>%s - %s</h3>" % (_e(p["phase"]), _e(p["outcome"] or "no outcome")))
        if ts:
            x0, x1 = min(ts), max(ts)
            pad = max((x1 - x0) * 0.04, 1.0)
            out.append(timeline_plot("timeline-%s" % p["phase"], p["events"], x0 - pad, x1 + pad))
        out.append(_table(["seq", "time", "step", "event", "decision", "reason"],
                          [[e["seq"], _clock(e["t"]), e["step"], e["event"], e["decision"], e["reason"]]
                           for e in p["events"]]))
    return "".join(out)


def _metrics(m):
    met, span = m["metrics"], m["span"]
    out = []
    for note in met.get("notes") or []:
        out.append('<p class="note">%s</p>' % _e(note))
    series = met.get("series") or {}
    if span["start"] is None:
        return "".join(out) + _nothing("No time span: the ledger has no entries of this release.")
    if not met.get("available"):
        out.append(_nothing("No metric series (no provider given, or it returned nothing); the canary weight steps "
                            "from the ledger are shown alone."))
    for key, title, fmt in (("error_rate", "error rate (stable vs canary)", lambda v: "%.2f %%" % (100.0 * v)),
                            ("p99_latency_ms", "p99 latency in ms (stable vs canary)", lambda v: "%g" % round(v, 1))):
        lines = [(slot, colour, (series.get(slot) or {}).get(key) or [])
                 for slot, colour in (("stable", STABLE_C), ("canary", CANARY_C))]
        out.append(time_plot(key.replace("_", "-"), title, lines, span["start"], span["end"], m["weights"], fmt))
    if met.get("queries"):
        out.append(_table(["slot", "series", "query"], [[slot, name, q] for slot, named in sorted(met["queries"].items())
                                                        for name, q in sorted(named.items())]))
    if met.get("provider"):
        out.append('<p class="muted">provider %s, step %s s, window %s</p>' % (
            _e(_fmt(met["provider"])), _e(_fmt(met.get("step"))), _e(met.get("window"))))
    return "".join(out)


def _judge(m):
    if not m["judge"]:
        return _nothing("No canary judge verdict in the ledger.")
    rows = []
    for j in m["judge"]:
        fa = j.get("fast_abort") or {}
        rows.append([j["step"], j["weight"], _badge(j["verdict"] == "pass", "pass", j["verdict"] or "-"), j["looks"],
                     j["requests"], j["e_fail"], j["fail_threshold"], j["e_pass"], j["pass_threshold"],
                     ("%s ms" % _fmt(fa.get("ms_after_verdict"))) if fa.get("applied") else (fa.get("error") or "-"),
                     j["reason"]])
    return judge_plot(m["judge"]) + _table(
        ["step", "weight %", "verdict", "looks", "requests", "e_fail", "fail boundary", "e_pass", "pass boundary",
         "fast abort (verdict to weight 0)", "reason"], rows, raw=(2,))


def _gates(m):
    if not m["gates"]:
        return _nothing("No gate verdict in the ledger.")
    rows = []
    for g in m["gates"]:
        for i, r in enumerate(g["results"]):
            rows.append([g["phase"], g["step"], r["name"], r["observed"], r["threshold"],
                         gate_bar("gate-%s-%d" % (g["seq"], i), r), _badge(r["passed"]), r["window"],
                         "<code>%s</code>" % _e(r["query"] or "")])
        if not g["results"]:
            rows.append([g["phase"], g["step"], "(no checks recorded)", None, None, "", _badge(g["verdict"] == "pass"),
                         g["window"], ""])
    return _table(["phase", "step", "check", "observed", "threshold", "observed vs threshold", "", "window", "query"],
                  rows, raw=(5, 6, 8))


def _rollbacks(m):
    if not m["rollbacks"]:
        return _nothing("No rollback: nothing was rolled back.")
    rows = [[r["phase"], r["event"], _clock(r["t"]), r["verdict_event"] and "%s (seq %s)" % (r["verdict_event"], r["verdict_seq"]),
             "%s ms" % _fmt(r["fast_abort_ms"]) if r["fast_abort_ms"] is not None else "-",
             "%s s" % _fmt(r["seconds_after_verdict"]) if r["seconds_after_verdict"] is not None else "-",
             r["traffic_elapsed_ms"], r["weights_after"], r["left"] or "nothing", r["events_replayed"], r["reason"]]
            for r in m["rollbacks"]]
    return _table(["phase", "event", "time", "after verdict", "fast abort verdict to weight 0",
                   "verdict to rollback entry", "traffic change ms", "weights after", "left to do", "events replayed",
                   "reason"], rows)


def _retention(m):
    out = []
    if m["retention"]:
        out.append(_table(["phase", "when", "max_age", "max_msgs", "max_bytes"],
                          [[r["phase"], r["when"], r["retention"].get("max_age"), r["retention"].get("max_msgs"),
                            r["retention"].get("max_bytes")] for r in m["retention"]]))
    replays = [r for r in m["rollbacks"] if r["events_replayed"] is not None or r["replay"]]
    if replays:
        out.append(_table(["phase", "replay", "events replayed"],
                          [[r["phase"], r["replay"], r["events_replayed"]] for r in replays]))
    return "".join(out) or _nothing("No retention or replay recorded in the ledger.")


def _drills(m):
    if not m["drills"]:
        return _nothing("No chaos drill or sentinel entry in the ledger.")
    return _table(["kind", "drill", "score", "result", "time", "detail"],
                  [[d["kind"], d["drill"], d["score"], _badge(d["passed"]), _clock(d["t"]), d["detail"] or d["reason"]]
                   for d in m["drills"]], raw=(3,))


def _ledger(m):
    v = m["ledger"]
    if not v:
        return _nothing("The ledger was not verified.")
    ok = v.get("valid")
    text = "every link of the hash chain recomputed" if ok else "broken at seq %s (line %s): %s" % (
        v.get("broken_seq"), v.get("broken_line"), v.get("problem"))
    head = "%s %s" % (_badge(ok, "VERIFIED", "BROKEN"), _e(text))
    rows = [[k, v.get(k)] for k in ("count", "entries_in_file", "head_seq", "head_hash", "authenticated",
                                    "keyed_entries", "torn_tail", "path") if k in v]
    return "<p>%s</p>%s" % (head, _table(["", ""], rows))


RENDER = {"summary": _summary, "phases": _phases, "metrics": _metrics, "judge": _judge, "gates": _gates,
          "rollbacks": _rollbacks, "retention": _retention, "drills": _drills, "ledger": _ledger}


def render_html(model):
    """The whole report as one HTML document (text)."""
    body = ['<section id="%s"><h2>%s</h2>%s</section>' % (sid, _e(title), RENDER[sid](model)) for sid, title in SECTIONS]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head>'
            '<body><h1>%s</h1>\n%s\n</body></html>\n' % (_e(model["title"]), CSS, _e(model["title"]), "\n".join(body)))
