# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Anytime-valid canary-vs-baseline judge (pure Python, stdlib only).

Usage::

    judge = CanaryJudge(alpha=0.01, canary_share=0.5)
    result = judge.observe(baseline={"requests": 1000, "errors": 9},
                           canary={"requests": 1010, "errors": 11})
    result["verdict"]   # "continue" | "fail" | "pass" | "inconclusive"

Counts are cumulative since the analysis started (Prometheus counters).  Every
call turns the increments since the previous call into one *batch* and updates
a set of e-processes (test supermartingales).  By Ville's inequality an
e-process crosses 1/a with probability at most a however often and whenever
it is looked at, so the verdict may be requested after every scrape.

Method (details and references in docs/canary_judge.md; the e-processes of one stream are
``judge_streams.EventStream``, histogram quantiles ``histogram``, the options and the parsing of
the counts ``judge_inputs``):

* Each monitored quantity is an *event stream*: errors, and for every latency
  quantile q a "slow request" event (request slower than a histogram bucket
  boundary b_q fixed at the pooled q-quantile once enough data has been seen).
* Within a batch, with n_c canary and n_b baseline requests (N = n_c + n_b,
  theta0 = n_c / N) and m events of which x in the canary: if the canary is as
  good as the baseline, the requests of the batch are exchangeable, so x is
  hypergeometric.  For lambda >= 0 the e-value
  ``exp(lambda * x) / B(lambda)`` has expectation <= 1 whenever B bounds the
  hypergeometric moment generating function.  B is that function itself,
  computed exactly, when the counts are whole and the support has at most 400
  values (expectation exactly 1); otherwise the smallest of four
  valid bounds (Hoeffding 1963: sampling without replacement is dominated by
  sampling with replacement, both ways round; Serfling 1974 for the finite
  population correction).  For rare events the first one is the Lindon & Malek
  (2020) Poisson-process reduction: each event is in the canary with
  probability theta(r) = theta0 r / (theta0 r + 1 - theta0), r = the rate ratio.
  Mixing over a grid of r > 1 gives the *fail* e-process.
* The *pass* e-process tests H0': r >= margin against r < margin with the same
  conditional binomial likelihood (Lindon & Malek's model), mixed over a grid of
  r' < margin.  Pass needs every stream to prove non-inferiority
  (intersection-union test, each at ``pass_alpha``).  Errors may alternatively
  prove an absolute ceiling (``error_abs_margin``) so that a canary of a
  service whose baseline has zero errors can pass once enough clean canary
  requests are seen - never because of a lack of data.
* Latency also has a *shift* test over the whole histogram (fail side only,
  ``judge_streams.ShiftStream``): a stratified rank test with grouped normal
  scores, normalised bucket after bucket by the same hypergeometric moment
  generating function (exact or bounded).
* alpha is split across the fail tests: ``error_weight`` of it to errors, the
  rest to latency (``latency_shift_weight`` of that to the shift test, the
  rest shared equally by the latency quantiles), and the verdict is "fail" once
  sum_i alpha_i * E_i >= 1 - a supermartingale starting at alpha under H0, so
  P(ever "fail" | canary as good as baseline) <= alpha over all metrics and
  looks together (it holds every single stream's crossing of 1 / alpha_i).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import time

from ansible_collections.stagegate.rollout.plugins.module_utils.histogram import bucket_cdf, histogram_quantile
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_inputs import (
    JUDGE_DEFAULTS, CounterResetError, JudgeError, parse_counts, validate_options)
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_streams import (
    EventStream, ShiftStream, finite_or_text, log_mix)

VERDICTS = ("continue", "fail", "pass", "inconclusive")

STATE_VERSION = 1


class CanaryJudge:
    """Sequential canary-vs-baseline judge; see module docstring and docs/canary_judge.md.

    Options (all with defaults): see ``judge_inputs`` (the option list, JUDGE_DEFAULTS, validate_options).
    """

    DEFAULTS = JUDGE_DEFAULTS

    def __init__(self, alpha=0.01, canary_share=0.5, **options):
        unknown = set(options) - set(self.DEFAULTS)
        if unknown:
            raise JudgeError("unknown option(s) %s (accepted: %s)" % (sorted(unknown), ", ".join(sorted(self.DEFAULTS))))
        opts = dict(self.DEFAULTS)
        opts.update(options)
        opts["alpha"] = alpha
        opts["canary_share"] = canary_share
        self.options = self._validate(opts)
        self._reset_runtime()

    # ------------------------------------------------------------------
    _validate = staticmethod(validate_options)

    def _reset_runtime(self):
        self.looks = 0
        self.started_at = None    # first look of the current step
        self.step = None          # the current step's name (new_step)
        self.step_first_look = 1  # the look number the current step began with
        self.rebase_next = False  # the next look is the step's origin (no batch across a traffic change)
        self.step_n_c = 0.0       # requests of the current step (its sample-ratio check)
        self.step_n_b = 0.0
        self.carried = {"canary": 0.0, "baseline": 0.0, "steps": 0}   # evidence from the steps before
        self.last = None          # last cumulative readings {arm: (req, err, buckets)}
        self.bounds = None        # latency bucket bounds (tuple) once seen
        self.use_latency = None   # decided on the first observation
        self.errors = None        # EventStream
        self.latency = []         # list of dicts {q, alpha, boundary, margin, stream}
        self.shift = None         # ShiftStream (the latency shift test over the whole histogram)
        self.resets = 0
        self.final = None         # latched terminal verdict
        self.n_c = 0.0
        self.n_b = 0.0
        self.hist_c = None        # cumulative latency counts used since start
        self.hist_b = None

    # ------------------------------------------------------------------
    def _setup(self, has_latency):
        o = self.options
        self.use_latency = bool(has_latency) and bool(o["latency_quantiles"])
        err_alpha = o["alpha"] * (o["error_weight"] if self.use_latency else 1.0)
        self.errors = EventStream("errors", err_alpha, o["pass_alpha"], o["error_margin"],
                                  o["error_abs_margin"] or None)
        self.latency = []
        self.shift = None
        if self.use_latency:
            lat_alpha = o["alpha"] * (1.0 - o["error_weight"])
            if o["latency_shift_weight"] > 0:
                self.shift = ShiftStream(lat_alpha * o["latency_shift_weight"])
                lat_alpha -= self.shift.alpha
            per_q = lat_alpha / len(o["latency_quantiles"])
            for q in o["latency_quantiles"]:
                self.latency.append({"q": q, "alpha": per_q, "boundary": None, "margin": None,
                                     "stream": None, "shared_with": None})

    def _min_baseline(self, q):
        return max(50.0, 10.0 / (1.0 - q))

    def _fix_boundaries(self, bounds, base_cum):
        """Choose the bucket boundary of each quantile from the pooled histogram.

        The boundary nearest (in log-odds) to the q-quantile of the pooled
        canary + baseline histogram, once it holds max(50, 10 / (1 - q))
        requests; the latency margin is turned into a margin on the ratio of
        shares above the boundary by the same linear interpolation
        histogram_quantile uses.
        """
        total = base_cum[-1]
        for item in self.latency:
            if item["boundary"] is not None or item["shared_with"] is not None:
                continue
            q = item["q"]
            if total < self._min_baseline(q):
                continue
            best = None
            tq = math.log(q / (1.0 - q))
            for i, b in enumerate(bounds[:-1]):
                f = base_cum[i] / total
                if not (0.0 < f < 1.0):
                    continue
                dist = abs(math.log(f / (1.0 - f)) - tq)
                if best is None or dist < best[0]:
                    best = (dist, i)
            if best is None:
                continue
            i = best[1]
            b = bounds[i]
            prev_b = bounds[i - 1] if i > 0 else 0.0
            prev_c = base_cum[i - 1] if i > 0 else 0.0
            exceed = total - base_cum[i]
            # exceedance the baseline would have at b / (1 + margin), i.e. if it
            # were slower by the margin (linear interpolation in the bucket below b)
            x = b / (1.0 + self.options["latency_margin"])
            if x <= prev_b:
                cdf_x = bucket_cdf(bounds, base_cum, x)
            else:
                cdf_x = prev_c + (base_cum[i] - prev_c) * (x - prev_b) / (b - prev_b)
            exceed_shift = total - cdf_x
            margin = max(exceed_shift / exceed, 1.0 + 1e-6) if exceed > 0 else 1.0 + self.options["latency_margin"]
            # share one stream between quantiles mapped to the same boundary
            owner = None
            for other in self.latency:
                if other is not item and other["boundary"] == b and other["stream"] is not None:
                    owner = other
            if owner is not None:
                item["shared_with"] = owner["q"]
                item["boundary"] = b
                owner["stream"].alpha += item["alpha"]
                continue
            item["boundary"] = b
            item["boundary_index"] = i
            item["margin"] = margin
            item["stream"] = EventStream("latency_p%g" % (q * 100), item["alpha"], self.options["pass_alpha"], margin)

    # ------------------------------------------------------------------
    def new_step(self, step, canary_share=None, min_seconds=None, max_seconds=None):
        """Begin step ``step`` (another traffic share): the evidence so far carries over.

        The e-processes go on - each batch uses its own observed split, so they stay valid when the share changes -
        and the next look only records the counters (no batch spans the traffic change). ``canary_share``,
        ``min_seconds`` and ``max_seconds`` are the new step's; the seconds count from its first look. A ``fail``
        stays final; a ``pass`` or ``inconclusive`` is decided again on the new step's looks.
        """
        opts = dict(self.options)
        for name, value in (("canary_share", canary_share), ("min_seconds", min_seconds), ("max_seconds", max_seconds)):
            if value is not None or name == "max_seconds":
                opts[name] = value
        self.options = self._validate(opts)
        if self.final is not None and self.final[0] != "fail":
            self.final = None
        if self.errors is not None:
            self.carried = {"canary": self.n_c, "baseline": self.n_b, "steps": self.carried["steps"] + 1}
            self.rebase_next = True
        self.step = step
        self.started_at = None
        self.step_first_look = self.looks + 1
        self.step_n_c = self.step_n_b = 0.0

    def observe(self, baseline, canary, now=None):
        """Feed cumulative counts; returns the result dict (see docs)."""
        rb, eb, hb = parse_counts(baseline, "baseline")
        rc, ec, hc = parse_counts(canary, "canary")
        if (hb is None) != (hc is None):
            raise JudgeError("latency_buckets must be given for both baseline and canary or for neither")
        if hb is not None and hb[0] != hc[0]:
            raise JudgeError("baseline.latency_buckets and canary.latency_buckets have different bucket bounds: %s vs %s"
                             % (list(hb[0]), list(hc[0])))
        now = time.time() if now is None else float(now)
        if self.final is not None:
            return self._result(self.final[0], self.final[1], now)
        if self.errors is None:
            self._setup(hb is not None)
        if self.started_at is None:
            self.started_at = now
        if self.use_latency:
            if hb is None:
                raise JudgeError("latency_buckets were given on the first look and must be given on every look")
            if self.bounds is None:
                self.bounds = hb[0]
            elif hb[0] != self.bounds:
                raise JudgeError("latency_buckets bounds changed between looks: %s, was %s" % (list(hb[0]), list(self.bounds)))
        cur = {"baseline": (rb, eb, hb[1] if hb else None), "canary": (rc, ec, hc[1] if hc else None)}
        self.looks += 1
        if self.rebase_next:
            # the first look of a new step: its counters are the step's origin
            self.rebase_next = False
            self.last = cur
            return self._decide(now, note="step %s: origin recorded at its first look (evidence carried from %d "
                                          "canary / %d baseline requests)" % (self.step, self.n_c, self.n_b))
        if self.last is None:
            prev = {"baseline": (0.0, 0.0, None), "canary": (0.0, 0.0, None)}
        else:
            prev = self.last
        reset = self._check_reset(prev, cur)
        if reset:
            if self.options["on_reset"] == "error":
                raise CounterResetError(
                    "%s went backwards (%s); the process was probably restarted. "
                    "Start a new analysis, or use on_reset=rebase to continue from the new reading" % (reset, reset))
            self.resets += 1
            self.last = cur
            return self._decide(now, note="counter reset (%s): rebased, this look's increment dropped" % reset)
        self.last = cur
        d_nb = cur["baseline"][0] - prev["baseline"][0]
        d_nc = cur["canary"][0] - prev["canary"][0]
        d_eb = cur["baseline"][1] - prev["baseline"][1]
        d_ec = cur["canary"][1] - prev["canary"][1]
        self.n_b += d_nb
        self.n_c += d_nc
        self.step_n_b += d_nb
        self.step_n_c += d_nc
        self.errors.update(d_ec, d_eb, d_nc, d_nb)
        if self.use_latency:
            cb, cc = cur["baseline"][2], cur["canary"][2]
            pb = prev["baseline"][2] or [0.0] * len(cb)
            pc = prev["canary"][2] or [0.0] * len(cc)
            db = [a - b for a, b in zip(cb, pb)]
            dc = [a - b for a, b in zip(cc, pc)]
            if self.hist_b is None:
                self.hist_b = [0.0] * len(cb)
                self.hist_c = [0.0] * len(cc)
            tot_b, tot_c = db[-1], dc[-1]
            self.hist_b = [a + b for a, b in zip(self.hist_b, db)]
            self.hist_c = [a + b for a, b in zip(self.hist_c, dc)]
            # Boundaries are a function of the *pooled* histogram only (this
            # batch included): given the pooled counts, canary and baseline
            # labels stay exchangeable under H0, so the batch can be used at once.
            self._fix_boundaries(self.bounds, [a + b for a, b in zip(self.hist_b, self.hist_c)])
            if self.shift is not None:
                self.shift.update(_per_bucket(dc), _per_bucket(db))
            for item in self.latency:
                st = item["stream"]
                if st is None:
                    continue
                i = item["boundary_index"]
                st.update(tot_c - dc[i], tot_b - db[i], tot_c, tot_b)
        return self._decide(now)

    def _check_reset(self, prev, cur):
        for arm in ("baseline", "canary"):
            p, c = prev[arm], cur[arm]
            if c[0] < p[0]:
                return "%s.requests (%g < %g)" % (arm, c[0], p[0])
            if c[1] < p[1]:
                return "%s.errors (%g < %g)" % (arm, c[1], p[1])
            if p[2] is not None and c[2] is not None:
                for b, x, y in zip(self.bounds, c[2], p[2]):
                    if x < y:
                        return "%s.latency_buckets[le=%s] (%g < %g)" % (arm, b, x, y)
        return None

    # ------------------------------------------------------------------
    def _streams(self):
        """The streams whose fail evidence counts now: errors, and each latency test while the canary's observed
        quantile is beyond ``latency_tolerance`` (``_slower_beyond_tolerance``)."""
        out = [self.errors]
        if self.shift is not None and self._slower_beyond_tolerance((0.5, 0.9)):
            out.append(self.shift)
        for item in self.latency:
            if item["stream"] is not None and self._slower_beyond_tolerance((item["q"],)):
                out.append(item["stream"])
        return out

    def _slower_beyond_tolerance(self, quantiles):
        """Whether the canary's observed value of any of ``quantiles`` is more than ``latency_tolerance`` above
        the baseline's: only then does a latency test's evidence count towards a fail (a proven but smaller
        slowdown is no rollback; holding a fail back never adds a false one)."""
        tol = self.options["latency_tolerance"]
        if tol <= 0:
            return True
        if self.hist_c is None or self.hist_b is None:
            return False
        for q in quantiles:
            qc = histogram_quantile(q, self.bounds, self.hist_c)
            qb = histogram_quantile(q, self.bounds, self.hist_b)
            if qc is not None and qb is not None and qc > qb * (1.0 + tol):
                return True
        return False

    def _decide(self, now, note=None):
        o = self.options
        # fail: sum_i alpha_i * E_i >= 1 (a test supermartingale times alpha under H0; it holds every stream's
        # own crossing of 1 / alpha_i and adds up the evidence of streams that see the same regression)
        terms = [(math.log(st.alpha) + st.log_e_fail(), st) for st in self._streams()]
        total = log_mix([t for t, dummy in terms], [1.0] * len(terms))
        if total >= 0.0:
            return self._finish("fail", self._reason_fail(max(terms, key=lambda t: t[0])[1], total), now)
        # pass: every stream proved non-inferiority (intersection-union)
        proved = []
        missing = []
        thr = math.log(1.0 / o["pass_alpha"])
        e_ok = self.errors.log_e_pass() >= thr
        abs_le = self.errors.log_e_abs()
        abs_ok = abs_le is not None and abs_le >= thr
        if e_ok or abs_ok:
            proved.append("errors")
        else:
            missing.append("errors")
        for item in self.latency:
            if item["shared_with"] is not None:
                continue
            st = item["stream"]
            if st is not None and st.log_e_pass() >= thr:
                proved.append(st.name)
            else:
                missing.append("latency_p%g" % (item["q"] * 100))
        early = self.started_at is not None and now - self.started_at < o["min_seconds"]
        if not missing and self.n_c >= o["min_requests"] and not early:
            return self._finish("pass", "non-inferiority proven for %s after %d canary / %d baseline requests"
                                % (", ".join(proved), self.n_c, self.n_b), now)
        if o["max_requests"] is not None and self.n_c >= o["max_requests"]:
            return self._finish("inconclusive", "max_requests (%s canary requests) reached without proof; not yet proven: %s"
                                % (o["max_requests"], ", ".join(missing) or "min_requests"), now)
        if o["max_seconds"] is not None and now - self.started_at >= o["max_seconds"]:
            return self._finish("inconclusive", "max_seconds (%ss) reached without proof; not yet proven: %s"
                                % (o["max_seconds"], ", ".join(missing) or "min_requests"), now)
        if missing:
            awaiting = ", ".join(missing)
        elif self.n_c < o["min_requests"]:
            awaiting = "min_requests"
        else:
            awaiting = "min_seconds (%ss; non-inferiority proven so far)" % o["min_seconds"]
        reason = "no proof yet after %d canary / %d baseline requests; awaiting %s" % (self.n_c, self.n_b, awaiting)
        if note:
            reason = note + "; " + reason
        return self._result("continue", reason, now)

    @staticmethod
    def _evidence(st, total):
        """'e-value E >= 1/alpha_i' when the stream crossed alone, else what the sum over the streams reached."""
        e = math.exp(min(st.log_e_fail(), 700))
        if st.log_e_fail() >= math.log(1.0 / st.alpha):
            return "e-value %.3g >= %.3g" % (e, 1.0 / st.alpha)
        return "e-value %.3g (%.3g alone); sum of alpha_i x e-value over the streams %.3g >= 1" % (
            e, 1.0 / st.alpha, math.exp(min(total, 700)))

    def _reason_fail(self, st, total):
        if st is self.shift:
            return ("latency_shift: canary slower than the baseline across the latency histogram (p50 %s vs %s, "
                    "p90 %s vs %s; standardised rank score %+.2f after %d canary requests); %s" % (
                        _secs(histogram_quantile(0.5, self.bounds, self.hist_c)),
                        _secs(histogram_quantile(0.5, self.bounds, self.hist_b)),
                        _secs(histogram_quantile(0.9, self.bounds, self.hist_c)),
                        _secs(histogram_quantile(0.9, self.bounds, self.hist_b)),
                        st.z_score() or 0.0, st.n_c, self._evidence(st, total)))
        est = st.ratio_estimate()
        if st.name == "errors":
            what = "error rate %.3g%% vs baseline %.3g%%" % (
                100.0 * st.x_c / max(st.n_c, 1), 100.0 * st.x_b / max(st.n_b, 1))
        else:
            what = "%s: share of requests slower than %gs %.3g%% vs baseline %.3g%%" % (
                st.name, self._boundary_of(st), 100.0 * st.x_c / max(st.n_c, 1), 100.0 * st.x_b / max(st.n_b, 1))
        return "%s (ratio %s after %d canary requests); %s" % (
            what, "%.3g" % est if est is not None else "n/a", st.n_c, self._evidence(st, total))

    def _boundary_of(self, st):
        for item in self.latency:
            if item["stream"] is st:
                return item["boundary"]
        return None

    def _finish(self, verdict, reason, now):
        self.final = (verdict, reason)
        return self._result(verdict, reason, now)

    def _stream_stats(self, st):
        if self.options["confidence_bounds"] or self.final is not None:
            lo, hi = st.confidence_bounds(self.options["alpha"])
        else:
            lo, hi = None, None
        le_abs = st.log_e_abs()
        d = {
            "canary_events": st.x_c, "baseline_events": st.x_b,
            "canary_requests": st.n_c, "baseline_requests": st.n_b,
            "canary_rate": (st.x_c / st.n_c) if st.n_c else None,
            "baseline_rate": (st.x_b / st.n_b) if st.n_b else None,
            "ratio": finite_or_text(st.ratio_estimate()),
            "ratio_lower": finite_or_text(lo), "ratio_upper": finite_or_text(hi),
            "e_fail": finite_or_text(math.exp(min(st.log_e_fail(), 700))),
            "fail_threshold": 1.0 / st.alpha,
            "e_pass": finite_or_text(math.exp(min(st.log_e_pass(), 700))),
            "pass_threshold": 1.0 / self.options["pass_alpha"],
            "margin": st.margin,
        }
        if le_abs is not None:
            d["e_pass_abs"] = finite_or_text(math.exp(min(le_abs, 700)))
            d["abs_margin"] = st.abs_margin
        return d

    def _result(self, verdict, reason, now):
        res = {
            "verdict": verdict,
            "reason": reason,
            "looks": self.looks,
            "elapsed_seconds": (now - self.started_at) if self.started_at is not None else 0.0,
            "requests": {"canary": self.n_c, "baseline": self.n_b},
            "alpha": self.options["alpha"],
            "pass_alpha": self.options["pass_alpha"],
            "resets": self.resets,
        }
        if self.step is not None or self.carried["steps"]:
            res["step"] = {"name": self.step, "first_look": self.step_first_look,
                           "requests": {"canary": self.step_n_c, "baseline": self.step_n_b},
                           "carried": dict(self.carried)}
        if self.errors is not None:
            res["errors"] = self._stream_stats(self.errors)
        lat = []
        for item in self.latency:
            entry = {"quantile": item["q"], "boundary_seconds": item["boundary"], "alpha": item["alpha"]}
            if item["shared_with"] is not None:
                entry["shared_with_quantile"] = item["shared_with"]
            elif item["stream"] is not None:
                entry.update(self._stream_stats(item["stream"]))
            if self.hist_b is not None:
                entry["baseline_quantile_seconds"] = histogram_quantile(item["q"], self.bounds, self.hist_b)
                entry["canary_quantile_seconds"] = histogram_quantile(item["q"], self.bounds, self.hist_c)
            lat.append(entry)
        if self.use_latency:
            res["latency"] = lat
        if self.shift is not None:
            res["latency_shift"] = {
                "canary_requests": self.shift.n_c, "baseline_requests": self.shift.n_b,
                "score": finite_or_text(self.shift.z_score()),
                "e_fail": finite_or_text(math.exp(min(self.shift.log_e_fail(), 700))),
                "fail_threshold": 1.0 / self.shift.alpha, "alpha": self.shift.alpha,
            }
        res["srm"] = self._srm()
        return res

    def _srm(self):
        """Sample-ratio mismatch check of the current step's observed split against canary_share."""
        s = self.options["canary_share"]
        n = self.step_n_c + self.step_n_b
        if n <= 0:
            return {"observed_share": None, "mismatch": False}
        obs = self.step_n_c / n
        # anytime-valid check: Beta(1,1) mixture vs the declared share
        k = self.step_n_c
        log_m = (math.lgamma(k + 1) + math.lgamma(n - k + 1) - math.lgamma(n + 2)
                 - k * math.log(s) - (n - k) * math.log(1 - s))
        return {"observed_share": obs, "declared_share": s,
                "mismatch": log_m >= math.log(1.0 / self.options["srm_alpha"])}

    # ------------------------------------------------------------------
    def to_state(self):
        """JSON-serialisable state; CanaryJudge.from_state(state) resumes."""
        lat = []
        for item in self.latency:
            e = {k: item.get(k) for k in ("q", "alpha", "boundary", "margin", "shared_with", "boundary_index")}
            e["stream"] = item["stream"].to_state() if item["stream"] is not None else None
            lat.append(e)
        last = None
        if self.last is not None:
            last = {arm: [v[0], v[1], list(v[2]) if v[2] is not None else None] for arm, v in self.last.items()}
        opts = dict(self.options)
        return {
            "version": STATE_VERSION,
            "options": opts,
            "looks": self.looks, "started_at": self.started_at, "last": last,
            "bounds": [_enc_b(b) for b in self.bounds] if self.bounds is not None else None,
            "use_latency": self.use_latency,
            "errors": self.errors.to_state() if self.errors is not None else None,
            "latency": lat, "resets": self.resets,
            "shift": self.shift.to_state() if self.shift is not None else None,
            "final": list(self.final) if self.final else None,
            "n_c": self.n_c, "n_b": self.n_b,
            "hist_c": self.hist_c, "hist_b": self.hist_b,
            "step": self.step, "step_first_look": self.step_first_look, "rebase_next": self.rebase_next,
            "step_n_c": self.step_n_c, "step_n_b": self.step_n_b, "carried": dict(self.carried),
        }

    @classmethod
    def from_state(cls, state):
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise JudgeError("state: not a canary judge state of version %d" % STATE_VERSION)
        opts = dict(state["options"])
        if "latency_shift_weight" not in opts:
            # a state written before the shift test: its alpha was split without it
            opts["latency_shift_weight"] = 0.0 if state.get("errors") is not None else cls.DEFAULTS["latency_shift_weight"]
        alpha = opts.pop("alpha")
        share = opts.pop("canary_share")
        j = cls(alpha=alpha, canary_share=share, **opts)
        j.looks = state["looks"]
        j.started_at = state["started_at"]
        if state["last"] is not None:
            j.last = {arm: (v[0], v[1], tuple(v[2]) if v[2] is not None else None) for arm, v in state["last"].items()}
        j.bounds = tuple(_dec_b(b) for b in state["bounds"]) if state["bounds"] is not None else None
        j.use_latency = state["use_latency"]
        j.errors = EventStream.from_state(state["errors"]) if state["errors"] is not None else None
        j.latency = []
        for e in state["latency"]:
            item = {k: e.get(k) for k in ("q", "alpha", "boundary", "margin", "shared_with", "boundary_index")}
            item["stream"] = EventStream.from_state(e["stream"]) if e.get("stream") else None
            j.latency.append(item)
        # states written before the shift test existed keep their alpha split: no shift test
        j.shift = ShiftStream.from_state(state["shift"]) if state.get("shift") else None
        j.resets = state["resets"]
        j.final = tuple(state["final"]) if state["final"] else None
        j.n_c, j.n_b = state["n_c"], state["n_b"]
        j.hist_c, j.hist_b = state["hist_c"], state["hist_b"]
        # states written before steps existed: one step from the first look
        j.step = state.get("step")
        j.step_first_look = state.get("step_first_look", 1)
        j.rebase_next = bool(state.get("rebase_next", False))
        j.step_n_c, j.step_n_b = state.get("step_n_c", j.n_c), state.get("step_n_b", j.n_b)
        j.carried = dict(state.get("carried") or {"canary": 0.0, "baseline": 0.0, "steps": 0})
        return j

    def options_changed(self, **options):
        """Names of options that differ from this judge's (for resuming a state)."""
        return sorted(k for k, v in options.items() if k in self.options and self._norm(self.options[k]) != self._norm(v))

    @staticmethod
    def _norm(v):
        if isinstance(v, (list, tuple)):
            return [float(x) for x in v]
        return v


def _per_bucket(cum):
    """Per-bucket counts from cumulative ones."""
    return [cum[0]] + [b - a for a, b in zip(cum, cum[1:])]


def _secs(v):
    return "-" if v is None else "%.3gs" % v


def _enc_b(b):
    return "+Inf" if b == float("inf") else b


def _dec_b(b):
    return float("inf") if b == "+Inf" else float(b)
