# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a report written by stagegate.rollout.rollout_report, as a browser shows it.

:func:`check_rendered_report` is meant for any test that ends with a report (this directory's test, the
multi-host end-to-end test): it reads the HTML and the JSON, renders the HTML in headless Chromium
(``--dump-dom`` and ``--screenshot``) and asserts that every section and the plots asked for are there, that
nothing is fetched from the network and that no secret is in either file. It returns what it found, for
further asserts::

    from tests.integration.report.reportkit import check_rendered_report
    found = check_rendered_report(result["html_path"], tmp_path, secrets=[token],
                                  plots=("error-rate", "p99-latency-ms", "judge"), series=("stable", "canary"))
"""
import json
import os
import re
import shutil
import subprocess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECTIONS = ("summary", "phases", "metrics", "judge", "gates", "rollbacks", "retention", "drills", "ledger")
WIDTH, HEIGHT = 1100, 3000
STABLE_RGB, CANARY_RGB = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)


def chromium(args, html_path, profile, timeout=120):
    """Run headless Chromium on ``file://html_path`` with ``args``; returns its stdout (asserts rc 0)."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=%s" % profile] + list(args) + ["file://" + os.path.abspath(html_path)]
    res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout, start_new_session=True)
    assert res.returncode == 0, "chromium rc=%s: %s" % (res.returncode, res.stderr[-2000:])
    return res.stdout


def _near_pixels(png_path, colours, tol=40):
    """How many pixels of the screenshot are near each colour (None when matplotlib/numpy are not there)."""
    try:
        from matplotlib import image as mpimg
        import numpy as np
    except ImportError:
        return None
    img = mpimg.imread(png_path)
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3).astype(int)
    return [int((np.abs(rgb - np.array(c)).sum(axis=1) < tol).sum()) for c in colours]


def check_rendered_report(html_path, workdir, plots=("error-rate", "p99-latency-ms"), series=(), secrets=(),
                          sections=SECTIONS, texts=(), screenshot=True):
    """Assert the report at ``html_path`` (and ``report.json`` beside it) renders with ``sections`` and ``plots``.

    ``plots``: ``data-plot`` names that must be SVG elements of the rendered DOM; ``series``: slots whose lines
    must be drawn in both metric plots; ``secrets``: texts that must be in neither file nor the DOM; ``texts``:
    texts the DOM must contain. With ``screenshot``, the page is also drawn and its pixels checked (not blank;
    with ``series``, the stable blue and canary red lines are on screen). Returns ``{dom, model, plots}``.
    """
    assert os.path.exists(CHROMIUM), "chromium is needed to render the report (make setup installs it)"
    workdir = str(workdir)
    with open(html_path, encoding="utf-8") as fh:
        source = fh.read()
    json_path = os.path.join(os.path.dirname(html_path), "report.json")
    with open(json_path, encoding="utf-8") as fh:
        raw_json = fh.read()
    model = json.loads(raw_json)
    # self-contained: no script, no external resource, no stylesheet link
    assert "<script" not in source and "<link" not in source and "@import" not in source
    assert not re.search(r'\b(src|href)\s*=\s*"(https?:|//)', source), "the report loads something from the network"

    dom = chromium(["--dump-dom", "--virtual-time-budget=2000"], html_path, os.path.join(workdir, "chromium-dom"))
    assert dom.count("<section") == len(sections)
    for sid in sections:
        assert '<section id="%s">' % sid in dom, "section %s not rendered" % sid
    svgs = re.findall(r'<svg class="plot" data-plot="([^"]+)"', dom)
    for name in plots:
        assert name in svgs, "plot %s not rendered (plots: %s)" % (name, ", ".join(svgs))
    for slot in series:
        assert dom.count('<polyline data-series="%s" points="' % slot) >= 2, "no %s line in the metric plots" % slot
        for plot in ("error_rate", "p99_latency_ms"):
            assert model["metrics"]["series"].get(slot, {}).get(plot), "report.json: no %s %s series" % (slot, plot)
    for text in texts:
        assert text in dom, text
    for secret in secrets:
        for name, doc in (("report.html", source), ("report.json", raw_json), ("the DOM", dom)):
            assert secret not in doc, "a secret is in %s" % name
    assert model["summary"]["release"] in dom

    if screenshot:
        png = os.path.join(workdir, "report.png")
        chromium(["--screenshot=%s" % png, "--window-size=%d,%d" % (WIDTH, HEIGHT), "--hide-scrollbars"], html_path,
                 os.path.join(workdir, "chromium-shot"))
        assert os.path.getsize(png) > 30000, "the screenshot is nearly empty"
        near = _near_pixels(png, (STABLE_RGB, CANARY_RGB))
        if near is not None and series:
            assert near[0] > 200 and near[1] > 200, "plot lines not on screen (stable, canary pixels: %s)" % near
    return {"dom": dom, "model": model, "plots": svgs}
