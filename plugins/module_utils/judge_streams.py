# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary judge's event streams: the anytime-valid e-processes of one stream of events (pure Python).

An :class:`EventStream` is one monitored quantity of ``canary_judge.CanaryJudge`` - errors, or the requests
slower than a latency boundary - and keeps, batch after batch, the log *fail* e-values (a mixture over the
rate ratios of ``FAIL_GRID``, each batch's e-value bounded with :func:`_log_mgf_bound`), the log *pass*
likelihood ratios (non-inferiority against the margin, ``PASS_GRID``), the absolute-ceiling test of errors
and the totals; ``to_state`` / ``from_state`` keep it across looks. The method and its references are in the
docstring of ``canary_judge`` and in docs/canary_judge.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

# Alternatives for the fail test (rate ratios r > 1) with prior weights.  The
# weights favour the effects worth catching quickly (1.5x - 3x) but keep mass
# on small and very large effects.
FAIL_GRID = (
    (1.15, 0.04), (1.3, 0.07), (1.5, 0.12), (1.75, 0.15), (2.0, 0.17),
    (2.5, 0.15), (3.0, 0.11), (4.0, 0.08), (6.0, 0.06), (10.0, 0.05),
)
# Alternatives for the pass (non-inferiority) test, as multiples of 1 (the
# canary as good as the baseline) - only those below the margin are used.
PASS_GRID = ((0.5, 0.1), (0.7, 0.15), (0.85, 0.25), (1.0, 0.5))


def _log_mgf_bound(lam, x_total, n_c, n_b):
    """log of an upper bound on E[exp(lam * X)] for X ~ Hypergeometric.

    X = number of the ``x_total`` events of a batch that fall among its n_c
    canary requests (N = n_c + n_b requests, exchangeable under H0).  lam may be
    of either sign.  Minimum of four valid bounds.
    """
    m = x_total
    n = n_c + n_b
    if m <= 0 or n_c <= 0:
        return 0.0
    theta = n_c / n
    pi = m / n
    e = math.exp(lam)
    # events sampled with replacement (Lindon & Malek's Bernoulli/Poisson model)
    b1 = m * math.log1p(theta * (e - 1.0))
    # canary requests sampled with replacement from the pooled batch
    b2 = n_c * math.log1p(pi * (e - 1.0))
    # Serfling (1974) with finite-population correction, both ways round
    fpc_c = max(0.0, 1.0 - (n_c - 1.0) / n)
    fpc_m = max(0.0, 1.0 - (m - 1.0) / n)
    b3 = lam * n_c * pi + lam * lam * n_c * fpc_c / 8.0
    b4 = lam * m * theta + lam * lam * m * fpc_m / 8.0
    return min(b1, b2, b3, b4)


class EventStream:
    """One event stream (errors, or slow requests above a latency boundary).

    Keeps the log fail e-values (one per alternative of FAIL_GRID), the log
    pass likelihood ratios and totals.
    """

    def __init__(self, name, alpha, pass_alpha, margin, abs_margin=None):
        self.name = name
        self.alpha = alpha
        self.pass_alpha = pass_alpha
        self.margin = margin
        self.abs_margin = abs_margin
        self.fail_log = [0.0] * len(FAIL_GRID)
        self.pass_alts = [(r, w) for r, w in PASS_GRID if r < margin]
        wsum = sum(w for dummy, w in self.pass_alts)
        self.pass_alts = [(r, w / wsum) for r, w in self.pass_alts]
        self.pass_log = [0.0] * len(self.pass_alts)
        # absolute-ceiling test on the canary alone (errors only)
        self.abs_alts = []
        if abs_margin:
            self.abs_alts = [(abs_margin * f, w) for f, w in ((0.0, 0.4), (0.25, 0.3), (0.5, 0.2), (0.75, 0.1))]
        self.abs_log = [0.0] * len(self.abs_alts)
        self.x_c = 0.0
        self.x_b = 0.0
        self.n_c = 0.0
        self.n_b = 0.0
        self._cache = {}

    # -- update ---------------------------------------------------------
    def update(self, x_c, x_b, n_c, n_b):
        self._cache = {}
        self.n_c += n_c
        self.n_b += n_b
        self.x_c += x_c
        self.x_b += x_b
        if self.abs_alts and n_c > 0:
            c = self.abs_margin
            for i, (p, dummy) in enumerate(self.abs_alts):
                if p <= 0.0:
                    self.abs_log[i] = -math.inf if x_c > 0 else self.abs_log[i] + n_c * -math.log1p(-c)
                    continue
                self.abs_log[i] += x_c * math.log(p / c) + (n_c - x_c) * (math.log1p(-p) - math.log1p(-c))
        m = x_c + x_b
        if m <= 0 or n_c <= 0 or n_b <= 0:
            return
        n = n_c + n_b
        theta = n_c / n
        one = 1.0 - theta
        # fail test: exact under exchangeability (bounded MGF)
        fl = self.fail_log
        for i, (r, dummy) in enumerate(FAIL_GRID):
            lam = math.log(r)
            fl[i] += lam * x_c - _log_mgf_bound(lam, m, n_c, n_b)
        # pass test: conditional binomial (Poisson-process model)
        big = self.margin
        den = math.log(one + theta * big)
        lm = math.log(big)
        pl = self.pass_log
        for i, (r, dummy) in enumerate(self.pass_alts):
            pl[i] += x_c * (math.log(r) - lm) - m * (math.log(one + theta * r) - den)

    # -- statistics -------------------------------------------------------
    @staticmethod
    def _mix(logs, weights):
        top = max(logs)
        if top == -math.inf:
            return 0.0
        s = sum(w * math.exp(lv - top) for lv, w in zip(logs, weights))
        return top + math.log(s) if s > 0 else -math.inf

    def log_e_fail(self):
        v = self._cache.get("fail")
        if v is None:
            v = self._cache["fail"] = self._mix(self.fail_log, [w for dummy, w in FAIL_GRID])
        return v

    def log_e_pass(self):
        if not self.pass_alts:
            return 0.0
        v = self._cache.get("pass")
        if v is None:
            v = self._cache["pass"] = self._mix(self.pass_log, [w for dummy, w in self.pass_alts])
        return v

    def log_e_abs(self):
        if not self.abs_alts:
            return None
        v = self._cache.get("abs")
        if v is None:
            v = self._cache["abs"] = self._mix(self.abs_log, [w for dummy, w in self.abs_alts])
        return v

    def ratio_estimate(self):
        if self.n_c <= 0 or self.n_b <= 0:
            return None
        rb = self.x_b / self.n_b
        rc = self.x_c / self.n_c
        if rb == 0:
            return None if rc == 0 else float("inf")
        return rc / rb

    def _pooled_loglik(self, r):
        """Conditional log likelihood of the rate ratio r with the pooled split."""
        n = self.n_c + self.n_b
        theta = self.n_c / n
        m = self.x_c + self.x_b
        return self.x_c * math.log(r) - m * math.log1p(theta * (r - 1.0))

    def confidence_bounds(self, level_alpha):
        """Time-uniform (1 - level_alpha) confidence sequence on the rate ratio.

        Inverts one-sided mixture tests (the FAIL_GRID mixture, centred on each
        candidate r0, each side at level_alpha / 2) with the conditional
        binomial likelihood at the pooled request split (exact when the split
        is constant over the analysis).  Returns (lower, upper); 0 / inf when
        the data cannot bound that side yet.
        """
        if self.n_c <= 0 or self.n_b <= 0 or self.x_c + self.x_b <= 0:
            return 0.0, float("inf")
        cut = math.log(2.0 / level_alpha)
        grid = [(math.log(g), w) for g, w in FAIL_GRID]

        def excluded(log_r0, sign):
            base = self._pooled_loglik(math.exp(log_r0))
            s = 0.0
            for lg, w in grid:
                d = self._pooled_loglik(math.exp(log_r0 + sign * lg)) - base
                s += w * math.exp(min(d, 700.0))
            return s >= math.exp(cut)

        def bound(sign):
            # sign=+1: lower bound (largest r0 excluded by "r > r0" evidence)
            lo, hi = -12.0, 12.0
            if sign > 0:
                if not excluded(lo, 1):
                    return 0.0
                if excluded(hi, 1):
                    return float("inf")
            else:
                if not excluded(hi, -1):
                    return float("inf")
                if excluded(lo, -1):
                    return 0.0
            for dummy in range(30):
                mid = (lo + hi) / 2.0
                if excluded(mid, sign) == (sign > 0):
                    lo = mid
                else:
                    hi = mid
            return math.exp(lo if sign > 0 else hi)

        return bound(1), bound(-1)

    def to_state(self):
        return {
            "name": self.name, "alpha": self.alpha, "pass_alpha": self.pass_alpha,
            "margin": self.margin, "abs_margin": self.abs_margin,
            "fail_log": list(self.fail_log), "pass_log": list(self.pass_log),
            "abs_log": [_enc(v) for v in self.abs_log],
            "x_c": self.x_c, "x_b": self.x_b, "n_c": self.n_c, "n_b": self.n_b,
        }

    @classmethod
    def from_state(cls, st):
        s = cls(st["name"], st["alpha"], st["pass_alpha"], st["margin"], st.get("abs_margin"))
        s.fail_log = [float(v) for v in st["fail_log"]]
        s.pass_log = [float(v) for v in st["pass_log"]]
        s.abs_log = [_dec(v) for v in st.get("abs_log", [])]
        for k in ("x_c", "x_b", "n_c", "n_b"):
            setattr(s, k, float(st[k]))
        return s


def _enc(v):
    return "-inf" if v == -math.inf else v


def _dec(v):
    return -math.inf if v == "-inf" else float(v)


def finite_or_text(v):
    """JSON-friendly float (inf -> None is lossy; keep big numbers readable)."""
    if v is None:
        return None
    if v == float("inf"):
        return "inf"
    if math.isnan(v):
        return None
    return v
