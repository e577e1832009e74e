# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary judge benchmark: our anytime-valid judge vs threshold, Kayenta-style and oracle judges.

Every judge sees the *same* simulated streams.  Traffic is simulated at scrape
granularity (a scrape every 10 s), each scrape's counts drawn from the
per-request model: Poisson arrivals, each request routed to the canary with
probability ``share``, failing with probability p, and with a log-normal
latency (median 100 ms, sigma 0.5) counted into the Prometheus client's default
histogram buckets.  Judges:

* ours: the real ``CanaryJudge`` class (alpha 0.01), fed cumulative counters
  after every scrape (360 looks per hour).
* threshold (Flagger / Argo Rollouts style): every 1-minute interval, canary
  success rate >= 99 % and p99 (histogram_quantile) < 500 ms; no data is a
  failed check; rollback after N failed checks (N = 1: Argo failureLimit 0;
  N = 5: a typical Flagger threshold); promotion at the end of the window.
* kayenta (Spinnaker Kayenta style): every interval, over the growing window
  of 1-minute points, Mann-Whitney U (98 % confidence) canary vs baseline for
  error rate, p50, p90 and p99; a metric is "High" when significant and the
  canary's median exceeds the baseline's by more than the 25 % tolerance;
  score = 100 x unflagged / 4; the error rate is a critical metric (High
  rolls back at once); score < 75 (marginal) rolls back, a final score
  >= 95 (pass) promotes, anything else at the end fails.
* oracle: Wald's SPRT (alpha = beta = 0.01) that knows the true effect (error
  ratio 2 / the +20 % latency distribution) - the lower bound on delay.

Usage::

    python bench/judge_benchmark.py --quick     # < 2 minutes
    python bench/judge_benchmark.py             # full: 10,000 healthy runs per row
    python bench/judge_benchmark.py --quick --row latency:10:0.5 --row latency:1:0.5 \
        --ours-options '{"latency_shift_weight": 0.9}'   # only these rows, a variant of ours

``--row EFFECT:RATE:SHARE`` (EFFECT: the start of its name, ``healthy``, ``errors`` or
``latency``) runs only the rows named, with the same seeds and streams as the full run's
first runs of those rows; ``--ours-options`` passes judge options to "ours" (to measure
a variant against the same streams).  Without them the run is the full one.

Writes bench/out/judge_benchmark.png, bench/out/judge_benchmark.json and
prints the Markdown table that bench/RESULTS.md ("## Canary judge") carries.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.stagegate.rollout.plugins.module_utils.canary_judge import CanaryJudge  # noqa: E402

INF = float("inf")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF)
SCRAPE = 10          # seconds between scrapes (= looks of our judge)
INTERVAL = 60        # seconds per check of the threshold / Kayenta judges
HORIZON = 3600       # maximum analysis duration (s), the same for every judge
ALPHA = 0.01
BASE_ERR = 0.01
BASE_MEDIAN = 0.100
SIGMA = 0.5
EFFECTS = {
    "healthy": (BASE_ERR, BASE_MEDIAN),
    "errors 1%->2%": (2 * BASE_ERR, BASE_MEDIAN),
    "latency +20%": (BASE_ERR, 1.2 * BASE_MEDIAN),
}
RATES = (1, 10, 100)      # requests/s per arm at a 50 % split; total = 2 x rate
SHARES = (0.5, 0.05)


def bucket_probs(median, sigma=SIGMA):
    b = np.array(BUCKETS)
    cdf = np.ones(len(b))
    cdf[:-1] = stats.norm.cdf((np.log(b[:-1]) - math.log(median)) / sigma)
    return np.diff(np.concatenate([[0.0], cdf]))


# ---------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------

def simulate(rng, runs, rate, share, effect):
    """Per-scrape increments, arrays shaped (runs, looks[, buckets])."""
    looks = HORIZON // SCRAPE
    p_c, med_c = EFFECTS[effect]
    total = rng.poisson(2 * rate * SCRAPE, size=(runs, looks))
    n_c = rng.binomial(total, share)
    n_b = total - n_c
    e_c = rng.binomial(n_c, p_c)
    e_b = rng.binomial(n_b, BASE_ERR)
    h_c = rng.multinomial(n_c, bucket_probs(med_c))
    h_b = rng.multinomial(n_b, bucket_probs(BASE_MEDIAN))
    return {"n_c": n_c, "n_b": n_b, "e_c": e_c, "e_b": e_b, "h_c": h_c, "h_b": h_b}


# ---------------------------------------------------------------------------
# judges
# ---------------------------------------------------------------------------

OPT_IN = {"error_margin": 1.4}     # the measured opt-in for promotion at low traffic (healthy runs only)
OPT_IN_NAME = "ours, error_margin 1.4"
OPT_IN_ROWS = ((10, 0.5), (100, 0.5), (100, 0.05))
JUDGES = ("ours", OPT_IN_NAME, "oracle SPRT", "threshold N=1", "threshold N=5", "kayenta")


def run_ours(sim, share, **options):
    """Our CanaryJudge, one look per scrape (``options``: judge options other than the defaults).
    Returns arrays verdict code, look index."""
    runs, looks = sim["n_c"].shape
    code = np.zeros(runs, dtype=int)       # 0 continue/inconclusive, 1 fail, 2 pass
    at = np.full(runs, looks - 1)
    errs_at = np.zeros(runs)
    cn_c = np.cumsum(sim["n_c"], axis=1).tolist()
    cn_b = np.cumsum(sim["n_b"], axis=1).tolist()
    ce_c = np.cumsum(sim["e_c"], axis=1).tolist()
    ce_b = np.cumsum(sim["e_b"], axis=1).tolist()
    ch_c = np.cumsum(np.cumsum(sim["h_c"], axis=2), axis=1).tolist()
    ch_b = np.cumsum(np.cumsum(sim["h_b"], axis=2), axis=1).tolist()
    for r in range(runs):
        judge = CanaryJudge(alpha=ALPHA, canary_share=share, max_seconds=HORIZON, confidence_bounds=False, **options)
        for t in range(looks):
            res = judge.observe(
                baseline={"requests": cn_b[r][t], "errors": ce_b[r][t], "latency_buckets": dict(zip(BUCKETS, ch_b[r][t]))},
                canary={"requests": cn_c[r][t], "errors": ce_c[r][t], "latency_buckets": dict(zip(BUCKETS, ch_c[r][t]))},
                now=(t + 1) * SCRAPE)
            v = res["verdict"]
            if v != "continue":
                code[r] = {"fail": 1, "pass": 2}.get(v, 0)
                at[r] = t
                errs_at[r] = ce_c[r][t] + ce_b[r][t]
                break
    return code, at, errs_at


def _hq(q, cum):
    """Vectorised histogram_quantile over the last axis (cumulative counts); nan if empty."""
    total = cum[..., -1]
    rank = q * total
    b = np.array(BUCKETS)
    idx = np.argmax(cum >= rank[..., None], axis=-1)
    idx = np.minimum(idx, len(b) - 2)          # +Inf bucket: report the last finite bound
    hi = b[idx]
    lo = np.where(idx > 0, b[np.maximum(idx - 1, 0)], 0.0)
    c_hi = np.take_along_axis(cum, idx[..., None], -1)[..., 0]
    c_lo = np.where(idx > 0, np.take_along_axis(cum, np.maximum(idx - 1, 0)[..., None], -1)[..., 0], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(c_hi > c_lo, (rank - c_lo) / (c_hi - c_lo), 1.0)
        out = lo + (hi - lo) * np.clip(frac, 0, 1)
    return np.where(total > 0, out, np.nan)


def per_interval(sim):
    k = INTERVAL // SCRAPE
    runs, looks = sim["n_c"].shape
    m = looks // k
    out = {}
    for key in ("n_c", "n_b", "e_c", "e_b"):
        out[key] = sim[key][:, :m * k].reshape(runs, m, k).sum(axis=2)
    for key in ("h_c", "h_b"):
        out[key] = np.cumsum(sim[key][:, :m * k].reshape(runs, m, k, -1).sum(axis=2), axis=-1)
    return out


def run_threshold(iv, n_fail):
    """Flagger / Argo style: rollback after n_fail failed 1-minute checks."""
    n_c = iv["n_c"]
    with np.errstate(invalid="ignore", divide="ignore"):
        sr = 1.0 - iv["e_c"] / n_c
    p99 = _hq(0.99, iv["h_c"].astype(float))
    failed = (n_c == 0) | ~(sr >= 0.99) | ~(p99 < 0.5)
    cum = np.cumsum(failed, axis=1)
    hit = cum >= n_fail
    any_hit = hit.any(axis=1)
    first = np.where(any_hit, np.argmax(hit, axis=1), hit.shape[1] - 1)
    code = np.where(any_hit, 1, 2)
    return code, first


def run_kayenta(iv, tolerance=0.25, conf=0.98, marginal=75.0, pass_score=95.0):
    runs, m = iv["n_c"].shape
    with np.errstate(invalid="ignore", divide="ignore"):
        metrics = [
            (iv["e_c"] / iv["n_c"], iv["e_b"] / iv["n_b"]),
        ]
    for q in (0.5, 0.9, 0.99):
        metrics.append((_hq(q, iv["h_c"].astype(float)), _hq(q, iv["h_b"].astype(float))))
    code = np.zeros(runs, dtype=int)
    at = np.full(runs, m - 1)
    done = np.zeros(runs, dtype=bool)
    for t in range(2, m):           # needs >= 3 points per arm
        flagged = np.zeros(runs, dtype=int)
        critical = np.zeros(runs, dtype=bool)
        for mi, (c, b) in enumerate(metrics):
            cc, bb = c[:, :t + 1], b[:, :t + 1]
            # tolerate missing points (no requests in an interval) as Kayenta drops NaN
            with np.errstate(invalid="ignore"):
                p = stats.mannwhitneyu(cc, bb, axis=1, alternative="two-sided", nan_policy="omit").pvalue
            p = np.asarray(p, dtype=float)
            med_c = np.nanmedian(cc, axis=1)
            med_b = np.nanmedian(bb, axis=1)
            high = (p < 1 - conf) & (med_c > med_b * (1 + tolerance)) & ~((med_b == 0) & (med_c == 0))
            # a zero baseline median with a non-zero canary median is an unbounded increase
            high = np.where(np.isnan(p), False, high)
            flagged += high
            if mi == 0:          # error rate is a critical metric: High fails at once
                critical |= high
        score = 100.0 * (len(metrics) - flagged) / len(metrics)
        new_fail = (~done) & ((score < marginal) | critical)
        code[new_fail] = 1
        at[new_fail] = t
        done |= new_fail
        if t == m - 1:
            last = ~done
            code[last & (score >= pass_score)] = 2
            code[last & (score < pass_score)] = 1
            at[last] = t
    return code, at


def run_oracle(sim, effect, share):
    """Wald SPRT knowing the true effect; healthy: both SPRTs, pass when both accept."""
    a_up = math.log((1 - ALPHA) / ALPHA)
    a_lo = math.log(ALPHA / (1 - ALPHA))
    runs, looks = sim["n_c"].shape
    tests = []
    if effect in ("healthy", "errors 1%->2%"):
        n_c, n_b = sim["n_c"].astype(float), sim["n_b"].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = np.where(n_c + n_b > 0, n_c / (n_c + n_b), share)
        m = sim["e_c"] + sim["e_b"]
        llr = sim["e_c"] * math.log(2.0) - m * np.log1p(theta)
        tests.append(np.cumsum(llr, axis=1))
    if effect in ("healthy", "latency +20%"):
        q1, q0 = bucket_probs(1.2 * BASE_MEDIAN), bucket_probs(BASE_MEDIAN)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where((q1 > 0) & (q0 > 0), np.log(q1 / q0), 0.0)
        tests.append(np.cumsum(sim["h_c"] @ w, axis=1))
    code = np.zeros(runs, dtype=int)
    at = np.full(runs, looks - 1)
    up_any = np.zeros((runs, looks), dtype=bool)
    lo_all = np.ones((runs, looks), dtype=bool)
    for s in tests:
        up = s >= a_up
        lo = s <= a_lo
        # a test stops at its first crossing
        first_up = np.where(up.any(1), np.argmax(up, 1), looks)
        first_lo = np.where(lo.any(1), np.argmax(lo, 1), looks)
        idx = np.arange(looks)[None, :]
        up_any |= (idx >= first_up[:, None]) & (first_up < first_lo)[:, None]
        lo_all &= (idx >= first_lo[:, None]) & (first_lo < first_up)[:, None]
    f = up_any.any(1)
    p = lo_all.any(1)
    fi = np.where(f, np.argmax(up_any, 1), looks)
    pi = np.where(p, np.argmax(lo_all, 1), looks)
    code[f & (fi <= pi)] = 1
    at[f & (fi <= pi)] = fi[f & (fi <= pi)]
    sel = p & ~(f & (fi <= pi))
    code[sel] = 2
    at[sel] = pi[sel]
    return code, at


# ---------------------------------------------------------------------------
# one work unit
# ---------------------------------------------------------------------------

def work(args):
    effect, rate, share, runs, seed, ours_options = args
    rng = np.random.default_rng(seed)
    sim = simulate(rng, runs, rate, share, effect)
    cum_c = np.cumsum(sim["n_c"], axis=1)
    cum_ce = np.cumsum(sim["e_c"] + sim["e_b"], axis=1)
    out = {}
    t0 = time.time()
    code, at, errs = run_ours(sim, share, **ours_options)
    out["ours"] = (code, (at + 1) * SCRAPE, cum_c[np.arange(runs), at], errs)
    if effect == "healthy" and (rate, share) in OPT_IN_ROWS:
        # the opt-in margin changes only what "pass" needs: the fail side is the same judge (at 1 req/s per arm,
        # or 10 at a 5 % share, it promotes few canaries within the hour either way, and those rows cost the most)
        code, at, errs = run_ours(sim, share, **OPT_IN)
        out[OPT_IN_NAME] = (code, (at + 1) * SCRAPE, cum_c[np.arange(runs), at], errs)
    ours_time = time.time() - t0
    iv = per_interval(sim)
    icum_c = np.cumsum(iv["n_c"], axis=1)
    icum_e = np.cumsum(iv["e_c"] + iv["e_b"], axis=1)
    for name, fn in (("threshold N=1", lambda: run_threshold(iv, 1)),
                     ("threshold N=5", lambda: run_threshold(iv, 5)),
                     ("kayenta", lambda: run_kayenta(iv))):
        code, at = fn()
        out[name] = (code, (at + 1) * INTERVAL, icum_c[np.arange(runs), at], icum_e[np.arange(runs), at])
    code, at = run_oracle(sim, effect, share)
    out["oracle SPRT"] = (code, (at + 1) * SCRAPE, cum_c[np.arange(runs), at], cum_ce[np.arange(runs), at])
    return (effect, rate, share), {k: [a.tolist() for a in v] for k, v in out.items()}, ours_time, runs


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------

def wilson(k, n, z=1.96):
    if n == 0:
        return (float("nan"),) * 3
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return p, max(0.0, c - h), min(1.0, c + h)


def fixed_sample_requests(p, margin=1.25, share=0.5, alpha=0.05, power=0.8):
    """Canary requests a fixed-sample non-inferiority test (ratio < margin, true ratio 1,
    conditional binomial, normal approximation) needs at error rate p and this split."""
    theta0 = share
    theta_m = share * margin / (share * margin + 1 - share)
    za, zb = stats.norm.ppf(1 - alpha), stats.norm.ppf(power)
    events = ((za * math.sqrt(theta_m * (1 - theta_m)) + zb * math.sqrt(theta0 * (1 - theta0))) / (theta_m - theta0)) ** 2
    # events = p * (n_c + n_b) = p * n_c / share
    return events * share / p


def summarise(results):
    rows = []
    for (effect, rate, share), judges in sorted(results.items(), key=lambda kv: (list(EFFECTS).index(kv[0][0]), kv[0][2] * -1, kv[0][1])):
        oracle_delay = None
        o = judges["oracle SPRT"]
        if effect != "healthy":
            det = [c for c, code in zip(o["canary_requests"], o["code"]) if code == 1]
            oracle_delay = float(np.median(det)) if det else None
        for name in JUDGES:
            if name not in judges:
                continue
            j = judges[name]
            n = len(j["code"])
            code = np.array(j["code"])
            secs = np.array(j["seconds"])
            req = np.array(j["canary_requests"])
            errs = np.array(j["errors"])
            row = {"effect": effect, "rate": rate, "share": share, "judge": name, "runs": n}
            fails = int((code == 1).sum())
            passes = int((code == 2).sum())
            if effect == "healthy":
                p, lo, hi = wilson(fails, n)
                row.update(false_rollback=p, fr_lo=lo, fr_hi=hi, promoted=passes / n)
                if passes:
                    row["promote_requests_median"] = float(np.median(req[code == 2]))
                    row["promote_seconds_median"] = float(np.median(secs[code == 2]))
            else:
                p, lo, hi = wilson(fails, n)
                row.update(power=p, power_lo=lo, power_hi=hi, false_pass=passes / n)
                if fails:
                    row["delay_requests_median"] = float(np.median(req[code == 1]))
                    row["delay_requests_p90"] = float(np.percentile(req[code == 1], 90))
                    row["delay_seconds_median"] = float(np.median(secs[code == 1]))
                    row["delay_seconds_p90"] = float(np.percentile(secs[code == 1], 90))
                    row["delay_errors_median"] = float(np.median(errs[code == 1]))
                    if oracle_delay:
                        row["delay_vs_oracle"] = row["delay_requests_median"] / oracle_delay
            rows.append(row)
    return rows


def fmt(v, kind="n"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "pct":
        return "%.2f%%" % (100 * v)
    if kind == "x":
        return "%.2f" % v
    if v >= 10000:
        return "%.0f" % v
    return "%.0f" % v


def table(rows):
    lines = []
    lines.append("### Healthy canary (false rollback over the %d s window, promotion)" % HORIZON)
    lines.append("")
    lines.append("| req/s per arm | share | judge | runs | false rollback [95% CI] | promoted "
                 "| canary requests to promote (median) | seconds to promote (median) |")
    lines.append("|---:|---:|---|---:|---|---:|---:|---:|")
    for r in rows:
        if r["effect"] != "healthy":
            continue
        lines.append("| %d | %g%% | %s | %d | %s [%s, %s] | %s | %s | %s |" % (
            r["rate"], 100 * r["share"], r["judge"], r["runs"], fmt(r["false_rollback"], "pct"),
            fmt(r["fr_lo"], "pct"), fmt(r["fr_hi"], "pct"), fmt(r["promoted"], "pct"),
            fmt(r.get("promote_requests_median")), fmt(r.get("promote_seconds_median"))))
    for effect in [e for e in EFFECTS if e != "healthy"]:
        lines.append("")
        lines.append("### %s (power within %d s, detection delay)" % (effect, HORIZON))
        lines.append("")
        lines.append("| req/s per arm | share | judge | runs | power [95% CI] | false pass "
                     "| delay canary requests median / p90 | delay s median / p90 "
                     "| errors at detection (median) | delay / oracle |")
        lines.append("|---:|---:|---|---:|---|---:|---|---|---:|---:|")
        for r in rows:
            if r["effect"] != effect:
                continue
            lines.append("| %d | %g%% | %s | %d | %s [%s, %s] | %s | %s / %s | %s / %s | %s | %s |" % (
                r["rate"], 100 * r["share"], r["judge"], r["runs"], fmt(r["power"], "pct"), fmt(r["power_lo"], "pct"),
                fmt(r["power_hi"], "pct"), fmt(r["false_pass"], "pct"),
                fmt(r.get("delay_requests_median")), fmt(r.get("delay_requests_p90")),
                fmt(r.get("delay_seconds_median")), fmt(r.get("delay_seconds_p90")),
                fmt(r.get("delay_errors_median")), fmt(r.get("delay_vs_oracle"), "x")))
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    judges = ["ours", "oracle SPRT", "threshold N=1", "threshold N=5", "kayenta"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    # false rollback, healthy, by configuration
    cfg = sorted({(r["rate"], r["share"]) for r in rows}, key=lambda c: (-c[1], c[0]))
    x = np.arange(len(cfg))
    width = 0.16
    for i, j in enumerate(judges):
        vals = []
        for c in cfg:
            rr = [r for r in rows if r["effect"] == "healthy" and r["judge"] == j and (r["rate"], r["share"]) == c]
            vals.append(100 * rr[0]["false_rollback"] if rr else np.nan)
        axes[0].bar(x + (i - 2) * width, vals, width, label=j)
    axes[0].axhline(100 * ALPHA, color="k", ls="--", lw=1, label="alpha = 1%")
    axes[0].set_yscale("symlog", linthresh=1)
    axes[0].set_xticks(x)
    axes[0].set_xticklabels(["%d/s\n%g%%" % (c[0], 100 * c[1]) for c in cfg])
    axes[0].set_ylabel("false rollback (%)")
    axes[0].set_title("Healthy canary: false rollbacks")
    axes[0].legend(fontsize=7)
    for ax, effect in zip(axes[1:], ["errors 1%->2%", "latency +20%"]):
        for i, j in enumerate(judges):
            vals = []
            for c in cfg:
                rr = [r for r in rows if r["effect"] == effect and r["judge"] == j and (r["rate"], r["share"]) == c]
                vals.append(rr[0].get("delay_seconds_median", np.nan) / 60.0 if rr and rr[0]["power"] > 0.5 else np.nan)
            ax.bar(x + (i - 2) * width, vals, width, label=j)
        ax.set_xticks(x)
        ax.set_xticklabels(["%d/s\n%g%%" % (c[0], 100 * c[1]) for c in cfg])
        ax.set_ylabel("median detection delay (minutes; blank if power < 50%)")
        ax.set_title(effect)
    fig.suptitle("Canary judges on identical streams (%d s window, scrape %d s)" % (HORIZON, SCRAPE))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (< 2 minutes)")
    ap.add_argument("--healthy-runs", type=int, default=None)
    ap.add_argument("--effect-runs", type=int, default=None)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=20260124)
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--row", action="append", default=[], metavar="EFFECT:RATE:SHARE",
                    help="run only this row (repeatable), e.g. latency:10:0.5 or healthy:10:0.5")
    ap.add_argument("--ours-options", default="{}", metavar="JSON",
                    help="CanaryJudge options for 'ours' other than the defaults, e.g. '{\"error_weight\": 0.4}'")
    args = ap.parse_args(argv)
    ours_options = json.loads(args.ours_options)
    only = set()
    for spec in args.row:
        try:
            name, rate, share = spec.split(":")
            effect = [e for e in EFFECTS if e.startswith(name)][0]
            only.add((effect, int(rate), float(share)))
        except (ValueError, IndexError):
            ap.error("--row %r: expected EFFECT:RATE:SHARE, EFFECT one of %s" % (spec, ", ".join(EFFECTS)))
    healthy = args.healthy_runs or (300 if args.quick else 10000)
    effect_runs = args.effect_runs or (100 if args.quick else 1000)
    chunk = 250
    tasks = []
    for e_i, effect in enumerate(EFFECTS):
        n = healthy if effect == "healthy" else effect_runs
        for rate in RATES:
            for share in SHARES:
                if only and (effect, rate, share) not in only:
                    continue
                done = 0
                c_i = 0
                while done < n:
                    k = min(chunk, n - done)
                    seed = args.seed + 1000003 * e_i + 10007 * rate + int(share * 1000) * 101 + c_i
                    tasks.append((effect, rate, share, k, seed, ours_options))
                    done += k
                    c_i += 1
    # biggest first for load balance
    tasks.sort(key=lambda t: -t[3] * (3 if t[1] < 100 else 1))
    t0 = time.time()
    results = {}
    ours_time = 0.0
    with Pool(args.workers) as pool:
        for key, out, ot, runs in pool.imap_unordered(work, tasks):
            ours_time += ot
            slot = results.setdefault(key, {})
            for name, (code, secs, req, errs) in out.items():
                d = slot.setdefault(name, {"code": [], "seconds": [], "canary_requests": [], "errors": []})
                d["code"] += code
                d["seconds"] += secs
                d["canary_requests"] += req
                d["errors"] += errs
    wall = time.time() - t0
    rows = summarise(results)
    os.makedirs(args.out, exist_ok=True)
    txt = table(rows)
    fixed = {"%d%%_share" % (100 * s): {
        "power_80": fixed_sample_requests(BASE_ERR, share=s, power=0.8),
        "power_99": fixed_sample_requests(BASE_ERR, share=s, power=0.99)} for s in SHARES}
    with open(os.path.join(args.out, "judge_benchmark.json"), "w") as fh:
        json.dump({"rows": rows, "wall_seconds": wall, "judge_cpu_seconds": ours_time,
                   "fixed_sample_requests": fixed, "quick": args.quick,
                   "healthy_runs": healthy, "effect_runs": effect_runs,
                   "rows_only": sorted(list(r) for r in only), "ours_options": ours_options}, fh, indent=1)
    plot(rows, os.path.join(args.out, "judge_benchmark.png"))
    print(txt)
    print()
    print("Fixed-sample non-inferiority test (error ratio < 1.25, alpha 0.05, conditional binomial) at 1%% errors: "
          + "; ".join("share %s: %.0f canary requests at 80%% power, %.0f at 99%%" % (k, v["power_80"], v["power_99"])
                      for k, v in fixed.items()))
    print("wall %.0f s, CanaryJudge CPU %.0f s over %d workers" % (wall, ours_time, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
