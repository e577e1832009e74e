# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary judge's event streams: the anytime-valid e-processes of one stream of events (pure Python).

An :class:`EventStream` is one monitored quantity of ``canary_judge.CanaryJudge`` - errors, or the requests
slower than a latency boundary - and keeps, batch after batch, the log *fail* e-values (a mixture over the
rate ratios of ``FAIL_GRID``, each batch's e-value normalised by :func:`_log_mgf_many`), the log *pass*
likelihood ratios (non-inferiority against the margin, ``PASS_GRID``), the absolute-ceiling test of errors
and the totals; ``to_state`` / ``from_state`` keep it across looks. A :class:`ShiftStream` is the latency shift
test over the whole histogram (a stratified rank test, fail side only). The method and its references are in the
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
# Most of the weight is on 1 (a canary as good as the baseline, the case a
# promotion is waiting for); much better canaries prove it soon anyway.
PASS_GRID = ((0.5, 0.05), (0.7, 0.1), (0.85, 0.15), (1.0, 0.7))


def log_mix(logs, weights):
    """log of sum_i weights_i * exp(logs_i), computed without overflow (0 when every log is -inf)."""
    top = max(logs)
    if top == -math.inf:
        return 0.0
    s = sum(w * math.exp(lv - top) for lv, w in zip(logs, weights))
    return top + math.log(s) if s > 0 else -math.inf


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


# The largest support (number of possible values of X) whose hypergeometric moment generating function is computed
# exactly; larger batches use the bounds (they are tight there: the batch is far from exhausting its labels).
EXACT_SUPPORT_MAX = 400


def _log_mgf_many(lams, x_total, n_c, n_b):
    """log E[exp(lam * X)] for each lam of ``lams``, X ~ Hypergeometric (the ``x_total`` events of a batch that fall
    among its n_c canary requests out of N = n_c + n_b, exchangeable under H0).

    Exact (the sum over the hypergeometric's probabilities) when the counts are whole numbers and the support has at
    most ``EXACT_SUPPORT_MAX`` values - then exp(lam X) / E[exp(lam X)] has expectation exactly 1 under H0, the most
    an e-value of this form can be; otherwise :func:`_log_mgf_bound`'s valid upper bound.
    """
    m, a, b = x_total, n_c, n_b
    whole = all(abs(v - round(v)) < 1e-9 for v in (m, a, b))
    if m <= 0 or a <= 0 or not whole:
        return [_log_mgf_bound(lam, m, n_c, n_b) for lam in lams]
    m, a, b = int(round(m)), int(round(a)), int(round(b))
    n = a + b
    lo, hi = max(0, a - (n - m)), min(m, a)
    if hi - lo + 1 > EXACT_SUPPORT_MAX:
        return [_log_mgf_bound(lam, x_total, n_c, n_b) for lam in lams]
    lg = math.lgamma
    base = lg(m + 1) + lg(n - m + 1) - lg(n + 1) + lg(a + 1) + lg(b + 1)
    logp = [base - lg(k + 1) - lg(m - k + 1) - lg(a - k + 1) - lg(b - m + k + 1) for k in range(lo, hi + 1)]
    out = []
    for lam in lams:
        terms = [lp + lam * (lo + i) for i, lp in enumerate(logp)]
        top = max(terms)
        out.append(top + math.log(sum(math.exp(t - top) for t in terms)))
    return out


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
        # fail test: exact under exchangeability (the hypergeometric MGF, exact or bounded)
        fl = self.fail_log
        lams = [math.log(r) for r, dummy in FAIL_GRID]
        for i, (lam, lmgf) in enumerate(zip(lams, _log_mgf_many(lams, m, n_c, n_b))):
            fl[i] += lam * x_c - lmgf
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
        return log_mix(logs, weights)

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


# Alternatives of the latency shift test: the lambdas (per unit of normal score) mixed over, with prior weights.
# For a +20 % shift of a log-normal latency with sigma 0.5 (the benchmark's) the best lambda is about 0.35 at an
# equal split; larger shifts and smaller canary shares want more.
SHIFT_GRID = ((0.1, 0.15), (0.2, 0.2), (0.35, 0.25), (0.6, 0.2), (1.0, 0.12), (2.0, 0.08))

# Half the weight goes to a plug-in e-process whose lambda is learnt from the batches before (predictable, so
# still an e-process: the "predictable plug-in" of Waudby-Smith & Ramdas 2023), started at SHIFT_PRIOR.
SHIFT_PLUGIN_WEIGHT = 0.5
SHIFT_PRIOR = (0.3, 50.0)


def grouped_normal_scores(pooled):
    """Expected standard-normal score of a request in each bucket of the pooled histogram ``pooled`` (counts per
    bucket, not cumulative): E[Z | F(k-1) < Phi(Z) <= F(k)], F the pooled empirical distribution function.

    The ordinal-probit (van der Waerden-type) scores: for a shift of the log latency they are the locally most
    powerful rank scores of grouped normal data; they only depend on the pooled counts, so the canary / baseline
    labels of a batch stay exchangeable given them under H0.
    """
    total = float(sum(pooled))
    out = []
    acc = 0.0
    dens_lo = 0.0
    for c in pooled:
        if c <= 0 or total <= 0:
            out.append(0.0)
            continue
        hi = acc + c
        f_hi = hi / total
        dens_hi = 0.0 if f_hi >= 1.0 else _phi(_norm_ppf(f_hi))
        out.append((dens_lo - dens_hi) / (c / total))
        acc = hi
        dens_lo = dens_hi
    return out


def _phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _norm_ppf(p):
    """Inverse of the standard normal distribution function (Acklam's rational approximation, refined once)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    elif p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    # one Newton step on Phi(x) = p
    err = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    return x - err * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)


class ShiftStream:
    """The latency *shift* test: a stratified rank test of "the canary is slower" over the whole histogram.

    Every batch (the requests between two looks) is a stratum.  Each request gets the grouped normal score s_k
    of its bucket k (:func:`grouped_normal_scores`), computed from the pooled canary + baseline histogram of
    all batches so far, this one included - a function of the pooled counts only, so under H0 (the canary as
    fast as the baseline) the canary's requests of the batch are a uniformly random subset of its pooled
    requests, and the canary counts X_k of the buckets are multivariate hypergeometric.  Taken bucket after
    bucket, X_k given X_1 .. X_(k-1) is hypergeometric (the m_k requests of bucket k take their labels from the
    n_c - sum X_j canary and n_b - sum (m_j - X_j) baseline labels left), so for every lambda >= 0, with c_k =
    s_k minus the mean score of the batch's pooled requests in the buckets after k (the steps are then the
    increments of the Doob martingale of the canary's score sum, and add up to the rank statistic itself),

        e = prod_k exp(lambda c_k X_k) / B_k(lambda c_k)

    with B_k that hypergeometric's moment generating function as the errors use it (``_log_mgf_many``: exact
    in small batches, else the smallest of Hoeffding's two with-replacement bounds and Serfling's two, which keep
    the finite-population correction) has expectation <= 1 given the past and the pooled batch; the product over batches is a test
    supermartingale, mixed over ``SHIFT_GRID`` and a plug-in lambda (``SHIFT_PLUGIN_WEIGHT``).  It fails only (a rank test proves no non-inferiority margin
    on a quantile: the pass side stays with the quantile streams).  Unlike the quantile streams it needs no
    warm-up and uses every bucket, so a shift of the whole distribution is caught with fewer requests.
    """

    name = "latency_shift"

    def __init__(self, alpha):
        self.alpha = alpha
        self.log_e = [0.0] * (len(SHIFT_GRID) + 1)    # the grid's, then the plug-in's
        self.pooled = None          # pooled per-bucket counts (not cumulative) of every batch so far
        self.n_c = 0.0
        self.n_b = 0.0
        self.score_c = 0.0          # sum of the canary's scores minus their expectation under H0 (each batch's)
        self.var_sum = 0.0          # and the sum of its variances (the reported standardised statistic)
        self._cache = None

    def update(self, d_c, d_b):
        """One batch: ``d_c`` / ``d_b`` the canary's / baseline's requests per bucket (not cumulative)."""
        self._cache = None
        n_c = float(sum(d_c))
        n_b = float(sum(d_b))
        self.n_c += n_c
        self.n_b += n_b
        pool = [a + b for a, b in zip(d_c, d_b)]
        self.pooled = [a + b for a, b in zip(self.pooled, pool)] if self.pooled is not None else list(pool)
        if n_c <= 0 or n_b <= 0:
            return
        scores = grouped_normal_scores(self.pooled)
        plugin = self.plugin_lambda()     # from the batches before this one (predictable)
        n = n_c + n_b
        s_all = sum(s * c for s, c in zip(scores, pool))
        mean = s_all / n
        var = sum(c * (s - mean) ** 2 for s, c in zip(scores, pool)) / n
        if var <= 1e-12:
            return
        d_score = sum(s * c for s, c in zip(scores, d_c)) - n_c * mean
        d_var = n_c * n_b / (n - 1.0) * var
        self.score_c += d_score
        self.var_sum += d_var
        # bucket after bucket: given the canary counts of the buckets before, the canary count of bucket k is
        # hypergeometric (its m_k requests take their labels from the labels left), normalised as the errors are
        # (tilted by s_k minus the mean score of the requests left after bucket k: the increments of the Doob
        # martingale of the canary's score sum, so that the steps add up to the rank statistic itself)
        rem_c, rem_b = n_c, n_b
        rest_n, rest_s = n, s_all
        steps = []
        for sk, xk, mk in zip(scores, d_c, pool):
            if mk <= 0:
                continue
            rest_n -= mk
            rest_s -= sk * mk
            if rest_n <= 0:
                break
            ck = sk - rest_s / rest_n
            if rem_c > 0 and rem_b > 0 and ck != 0.0:
                steps.append((ck, xk, mk, rem_c, rem_b))
            rem_c -= xk
            rem_b -= mk - xk
        lams = [lam for lam, dummy in SHIFT_GRID]
        lams.append(plugin)
        acc = [0.0] * len(lams)
        for ck, xk, mk, r_c, r_b in steps:
            tilts = [lam * ck for lam in lams]
            for i, (ls, lmgf) in enumerate(zip(tilts, _log_mgf_many(tilts, mk, r_c, r_b))):
                acc[i] += ls * xk - lmgf
        for i, v in enumerate(acc):
            self.log_e[i] += v

    def plugin_lambda(self):
        """The lambda of the plug-in e-process for the next batch: the batches so far estimate the best tilt
        (their centred score sum over its variance), shrunk towards SHIFT_PRIOR[0] with the weight of
        SHIFT_PRIOR[1] units of score variance (about 2.5 SHIFT_PRIOR[1] canary requests at an equal split)."""
        lam0, v0 = SHIFT_PRIOR
        return min(max((self.score_c + lam0 * v0) / (self.var_sum + v0), 0.0), SHIFT_GRID[-1][0])

    def log_e_fail(self):
        if self._cache is None:
            w = [x * (1.0 - SHIFT_PLUGIN_WEIGHT) for dummy, x in SHIFT_GRID] + [SHIFT_PLUGIN_WEIGHT]
            self._cache = log_mix(self.log_e, w)
        return self._cache

    def z_score(self):
        """The canary's standardised score sum (> 0: slower than the baseline); None before any evidence."""
        if self.var_sum <= 0:
            return None
        return self.score_c / math.sqrt(self.var_sum)

    def to_state(self):
        return {"alpha": self.alpha, "log_e": list(self.log_e), "pooled": self.pooled,
                "n_c": self.n_c, "n_b": self.n_b, "score_c": self.score_c, "var_sum": self.var_sum}

    @classmethod
    def from_state(cls, st):
        s = cls(st["alpha"])
        s.log_e = [float(v) for v in st["log_e"]]
        s.pooled = [float(v) for v in st["pooled"]] if st.get("pooled") is not None else None
        for k in ("n_c", "n_b", "score_c", "var_sum"):
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
