# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PromQL subset the ``prometheus_text`` provider evaluates on its scrapes, so the same query works with
and without a Prometheus server::

    expr      := additive ('or' additive)*
    additive  := term (('+' | '-') term)*
    term      := unary (('*' | '/') unary)*
    unary     := '-' unary | primary
    primary   := NUMBER | '(' expr ')' | selector | aggregation | function
    selector  := metric_name ['{' label op "value", ... '}']      op: = != =~ !~
    aggregation := (sum|min|max|avg|count) [by|without (l, ...)] '(' expr ')' [by|without (l, ...)]
    function  := rate(selector[W]) | irate(selector[W]) | increase(selector[W])
               | histogram_quantile(phi, expr) | vector(NUMBER)
    a `or` b  := the series of a, plus those of b whose labels a does not have
                 (``sum(rate(errors[1m])) or vector(0)`` is 0 when nothing failed yet)
    binary vector ops match series on identical labels, or on(...) / ignoring(...)

``parse(text)`` gives a tree of tuples; ``Evaluator(source).eval(tree)`` computes it on a *source* with
``current()`` (the latest :class:`Scrape`) and ``scrapes_apart(window)`` (two scrapes about ``window`` seconds apart).
``rate(m[W])`` is the increase of each counter between the two scrapes divided by the seconds between them
(counter resets handled as Prometheus does; a series absent from the earlier scrape counted from 0);
``increase`` is that rate times ``W``; ``histogram_quantile`` is ``histogram.bucket_quantile``. A result is a
float or a list of ``(labels, value)``. Anything outside the subset is a :class:`QueryError` naming what is
supported. Plain Python, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_duration
from ansible_collections.stagegate.rollout.plugins.module_utils.histogram import bucket_quantile
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import QueryError, one_line


class Scrape(object):
    """One scrape of every target: ``taken`` (the source's clock when taken), ``samples`` (a list of
    ``(labels incl. __name__, value)``) and ``index`` (:func:`label_key` -> value)."""
    __slots__ = ("taken", "samples", "index")

    def __init__(self, taken, samples):
        self.taken = taken
        self.samples = samples
        self.index = {}
        for labels, value in samples:
            self.index[label_key(labels)] = value


def label_key(labels):
    """A hashable identity of a label set."""
    return tuple(sorted(labels.items()))


def parse(text):
    """The tree of a query in the subset; QueryError when it is not one."""
    return PromQLParser(text).parse()


class PromQLParser(object):
    """Recursive-descent parser of the PromQL subset evaluated by prometheus_text."""

    TOKEN = re.compile(r"""
        (?P<ws>\s+)
      | (?P<duration>(?:[0-9]+(?:ms|s|m|h|d|w|y))+(?![A-Za-z0-9_.]))
      | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+)
      | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<op>=~|!~|!=|==|>=|<=|=|>|<|[-+*/%^(){}\[\],@])
    """, re.VERBOSE)
    AGGREGATIONS = ("sum", "min", "max", "avg", "count")
    RANGE_FUNCS = ("rate", "irate", "increase")
    SUPPORTED = ("numbers, selectors with label matchers, + - * /, sum/min/max/avg/count [by|without], "
                 "rate/irate/increase(selector[window]), histogram_quantile(phi, ...), vector(n), or, "
                 "on()/ignoring()")

    def __init__(self, text):
        self.text = text
        self.tokens = []
        pos = 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m:
                raise QueryError("prometheus_text: cannot parse the query at %r: %s"
                                 % (text[pos:pos + 20], one_line(text)))
            kind = m.lastgroup
            if kind != "ws":
                self.tokens.append((kind, m.group(kind), pos))
            pos = m.end()
        self.i = 0

    def error(self, msg):
        tok = self.peek()
        where = "at %r" % tok[1] if tok else "at the end"
        raise QueryError("prometheus_text: %s %s in %s (supported: %s)"
                         % (msg, where, one_line(self.text), self.SUPPORTED))

    def peek(self, k=0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, value=None, kind=None):
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            self.error("expected %s" % (repr(value) if value else kind))
        self.i += 1
        return tok

    def accept(self, value):
        tok = self.peek()
        if tok is not None and tok[1] == value and tok[0] in ("op", "ident"):
            self.i += 1
            return True
        return False

    def parse(self):
        if not self.tokens:
            self.error("empty query")
        node = self.expr()
        if self.peek() is not None:
            self.error("unexpected token")
        return node

    def expr(self):
        node = self.additive()
        while self.peek() and self.peek()[0] == "ident" and self.peek()[1] == "or":
            self.i += 1
            node = ("or", node, self.matching(), self.additive())
        tok = self.peek()
        if tok and tok[0] == "ident" and tok[1] in ("and", "unless"):
            self.error("operator %s is not supported" % tok[1])
        return node

    def additive(self):
        return self._binary(("+", "-"), self.term)

    def _binary(self, operators, operand):
        """Left-associative ``operand (op [on|ignoring (...)] operand)*`` for the ``operators`` of one precedence."""
        node = operand()
        while self.peek() and self.peek()[1] in operators and self.peek()[0] == "op":
            op = self.take()[1]
            node = ("binop", op, node, self.matching(), operand())
        self._no_comparison()
        return node

    def _no_comparison(self):
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("==", "!=", ">", "<", ">=", "<=", "%", "^"):
            self.error("operator %s is not supported (put thresholds in the check: lt, gt, between ...)" % tok[1])

    def term(self):
        return self._binary(("*", "/"), self.unary)

    def matching(self):
        tok = self.peek()
        if tok and tok[0] == "ident" and tok[1] in ("on", "ignoring"):
            self.i += 1
            return (tok[1], self.label_list())
        if tok and tok[0] == "ident" and tok[1] in ("group_left", "group_right", "bool"):
            self.error("%s is not supported" % tok[1])
        return None

    def unary(self):
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("-", "+"):
            self.i += 1
            inner = self.unary()
            return ("neg", inner) if tok[1] == "-" else inner
        return self.primary()

    def label_list(self):
        self.take("(")
        labels = []
        while not self.accept(")"):
            labels.append(self.take(kind="ident")[1])
            if not self.accept(","):
                self.take(")")
                break
        return labels

    def primary(self):
        tok = self.peek()
        if tok is None:
            self.error("expected an expression")
        kind, value = tok[0], tok[1]
        if kind == "number":
            self.i += 1
            return ("num", float(int(value, 16)) if value.startswith("0x") else float(value))
        if kind == "op" and value == "(":
            self.i += 1
            node = self.expr()
            self.take(")")
            return node
        if kind == "op" and value == "{":
            return self.selector(None)
        if kind != "ident":
            self.error("unexpected token")
        low = value.lower()
        if low in ("inf", "nan") and not (self.peek(1) and self.peek(1)[1] in ("{", "[")):
            self.i += 1
            return ("num", float(low))
        if low in self.AGGREGATIONS and self.peek(1) and self.peek(1)[1] in ("(", "by", "without"):
            return self.aggregation()
        if self.peek(1) and self.peek(1)[1] == "(":
            return self.function()
        return self.selector(value)

    def aggregation(self):
        op = self.take()[1].lower()
        grouping = None
        if self.peek() and self.peek()[1] in ("by", "without"):
            grouping = (self.take()[1], self.label_list())
        self.take("(")
        inner = self.expr()
        if self.accept(","):
            self.error("aggregation parameters are not supported")
        self.take(")")
        if self.peek() and self.peek()[1] in ("by", "without"):
            if grouping:
                self.error("grouping given twice")
            grouping = (self.take()[1], self.label_list())
        return ("agg", op, grouping, inner)

    def function(self):
        name = self.take()[1]
        self.take("(")
        if name in self.RANGE_FUNCS:
            sel = self.primary()
            if sel[0] != "sel" or sel[3] is None:
                self.error("%s() needs a range selector like metric{...}[5m]" % name)
            self.take(")")
            return ("range", name, sel)
        if name == "vector":
            inner = self.expr()
            self.take(")")
            return ("vector", inner)
        if name == "histogram_quantile":
            phi = self.expr()
            self.take(",")
            inner = self.expr()
            self.take(")")
            return ("hq", phi, inner)
        self.i -= 2
        self.error("function %s() is not supported" % name)

    def selector(self, name):
        matchers = []
        if name is not None:
            self.i += 1
            if name in ("by", "without", "on", "ignoring", "offset", "bool"):
                self.error("unexpected keyword")
            matchers.append(("__name__", "=", name))
        if self.accept("{"):
            while not self.accept("}"):
                label = self.take(kind="ident")[1]
                optok = self.take(kind="op")
                if optok[1] not in ("=", "!=", "=~", "!~"):
                    self.i -= 1
                    self.error("expected a label matcher operator (=, !=, =~, !~)")
                raw = self.take(kind="string")[1]
                matchers.append((label, optok[1], _unquote(raw)))
                if not self.accept(","):
                    self.take("}")
                    break
        if not matchers:
            self.error("a selector needs a metric name or label matchers")
        compiled = []
        for label, op, value in matchers:
            if op in ("=~", "!~"):
                try:
                    value = re.compile("^(?:%s)$" % value, re.DOTALL)
                except re.error as exc:
                    raise QueryError("prometheus_text: invalid regex %r for label %s: %s" % (value, label, exc))
            compiled.append((label, op, value))
        window = None
        if self.accept("["):
            window = parse_duration(self.take(kind="duration")[1], "range")
            self.take("]")
        tok = self.peek()
        if tok and tok[1] in ("offset", "@"):
            self.error("%s is not supported" % tok[1])
        return ("sel", name, compiled, window)


def _unquote(raw):
    q = raw[0]
    body = raw[1:-1]
    if q == "`":
        return body
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(escapes.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _matches(labels, matchers):
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not value.match(have):
            return False
        if op == "!~" and value.match(have):
            return False
    return True


def _drop_name(labels):
    return dict((k, v) for k, v in labels.items() if k != "__name__")


def _div(a, b):
    if b == 0:
        if a == 0 or math.isnan(a):
            return float("nan")
        return math.copysign(float("inf"), a) * (1 if math.copysign(1, b) > 0 else -1)
    return a / b


_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _div}


class Evaluator(object):
    """Evaluates a tree of :func:`parse` on ``source`` (see the module docstring)."""

    def __init__(self, source):
        self.source = source

    def eval(self, node):
        kind = node[0]
        return getattr(self, "_" + kind)(node)

    def _num(self, node):
        return node[1]

    def _neg(self, node):
        v = self.eval(node[1])
        if isinstance(v, float):
            return -v
        return [(_drop_name(lab), -x) for lab, x in v]

    def _sel(self, node):
        dummy, name, matchers, window = node
        if window is not None:
            raise QueryError("prometheus_text: a range selector %s[...] must be inside rate(), irate() or increase()"
                             % (name or ""))
        return [(lab, v) for lab, v in self.source.current().samples if _matches(lab, matchers)]

    def _range(self, node):
        dummy, func, sel = node
        matchers, window = sel[2], sel[3]
        prev, cur = self.source.scrapes_apart(window)
        elapsed = cur.taken - prev.taken
        out = []
        for lab, v1 in cur.samples:
            if not _matches(lab, matchers):
                continue
            v0 = prev.index.get(label_key(lab), 0.0)
            delta = v1 - v0 if v1 >= v0 else v1       # counter reset: the new process counted from 0
            rate = delta / elapsed if elapsed > 0 else float("nan")
            out.append((_drop_name(lab), rate * window if func == "increase" else rate))
        return out

    def _agg(self, node):
        dummy, op, grouping, inner = node
        v = self.eval(inner)
        if isinstance(v, float):
            raise QueryError("prometheus_text: %s() needs a vector, got a number" % op)
        groups = {}
        order = []
        for lab, x in v:
            if grouping is None:
                g = {}
            elif grouping[0] == "by":
                g = dict((k, lab[k]) for k in grouping[1] if k in lab)
            else:
                g = dict((k, val) for k, val in lab.items() if k not in grouping[1] and k != "__name__")
            key = label_key(g)
            if key not in groups:
                groups[key] = (g, [])
                order.append(key)
            groups[key][1].append(x)
        out = []
        for key in order:
            g, xs = groups[key]
            if op == "sum":
                val = math.fsum(xs)
            elif op == "min":
                val = min(xs)
            elif op == "max":
                val = max(xs)
            elif op == "avg":
                val = math.fsum(xs) / len(xs)
            else:
                val = float(len(xs))
            out.append((g, val))
        return out

    def _hq(self, node):
        phi = self.eval(node[1])
        if not isinstance(phi, float):
            raise QueryError("prometheus_text: histogram_quantile's first argument must be a number")
        v = self.eval(node[2])
        if isinstance(v, float):
            raise QueryError("prometheus_text: histogram_quantile needs a vector of buckets (with an le label)")
        groups = {}
        order = []
        for lab, x in v:
            if "le" not in lab:
                continue
            try:
                ub = float(lab["le"])
            except ValueError:
                continue
            g = dict((k, val) for k, val in lab.items() if k not in ("le", "__name__"))
            key = label_key(g)
            if key not in groups:
                groups[key] = (g, [])
                order.append(key)
            groups[key][1].append((ub, x))
        return [(groups[k][0], bucket_quantile(phi, groups[k][1])) for k in order]

    def _vector(self, node):
        v = self.eval(node[1])
        if not isinstance(v, float):
            raise QueryError("prometheus_text: vector() needs a number")
        return [({}, v)]

    def _or(self, node):
        dummy, left, matching, right = node
        a = self.eval(left)
        b = self.eval(right)
        if isinstance(a, float) or isinstance(b, float):
            raise QueryError("prometheus_text: 'or' needs vectors on both sides (use vector(0) for a number)")
        sig = self._signature(matching)
        have = set(sig(lab) for lab, dummy_x in a)
        return list(a) + [(lab, x) for lab, x in b if sig(lab) not in have]

    @staticmethod
    def _signature(matching):
        def sig(lab):
            if matching is None:
                return label_key(_drop_name(lab))
            if matching[0] == "on":
                return label_key(dict((k, lab.get(k, "")) for k in matching[1]))
            return label_key(dict((k, v) for k, v in lab.items() if k not in matching[1] and k != "__name__"))
        return sig

    def _binop(self, node):
        dummy, op, left, matching, right = node
        a = self.eval(left)
        b = self.eval(right)
        f = _OPS[op]
        if isinstance(a, float) and isinstance(b, float):
            return f(a, b)
        if isinstance(a, float):
            return [(_drop_name(lab), f(a, x)) for lab, x in b]
        if isinstance(b, float):
            return [(_drop_name(lab), f(x, b)) for lab, x in a]
        sig = self._signature(matching)
        right_index = {}
        for lab, x in b:
            s = sig(lab)
            if s in right_index:
                raise QueryError("prometheus_text: many-to-many matching not allowed: several series on the right "
                                 "side of %s match %s; aggregate them or use on(...)" % (op, dict(s)))
            right_index[s] = x
        out = []
        seen = set()
        for lab, x in a:
            s = sig(lab)
            if s in seen:
                raise QueryError("prometheus_text: many-to-many matching not allowed: several series on the left "
                                 "side of %s match %s" % (op, dict(s)))
            seen.add(s)
            if s not in right_index:
                continue
            if matching is None:
                res = _drop_name(lab)
            elif matching[0] == "on":
                res = dict((k, lab[k]) for k in matching[1] if k in lab)
            else:
                res = dict((k, v) for k, v in lab.items() if k not in matching[1] and k != "__name__")
            out.append((res, f(x, right_index[s])))
        return out
