"""The HTML report renders in headless Chromium and its screenshot shows the plots."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from demo.report import build, sample_run
from demo.testkit import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 2400


def _screenshot(html_path, out_png, profile):
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=%s" % profile, "--screenshot=%s" % out_png, "--window-size=%d,%d" % (WIDTH, HEIGHT),
            "file://" + html_path]
    res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=90, start_new_session=True)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is installed by make setup")
def test_report_renders_with_plots(tmp_path):
    run = sample_run()
    out = tmp_path / "report"
    html_path = build(run, str(out))
    doc = open(html_path, encoding="utf-8").read()
    assert doc.count("data:image/png;base64,") >= 3  # error rate, latency, judge (+ events)
    for text in ("rolled back at canary", "Gates and their observed values", "Rollback", "Ledger verification",
                 "JetStream retention per phase", "Chaos drills"):
        assert text in doc
    data = json.load(open(out / "report.json"))
    assert data["summary"]["releases"] == {"v2": "promoted", "v3": "rolled_back"}
    assert data["summary"]["gates_failed"] == 1

    png = str(tmp_path / "shot.png")
    _screenshot(html_path, png, str(tmp_path / "profile"))
    assert os.path.getsize(png) > 50_000

    from matplotlib import image as mpimg
    import numpy as np

    img = mpimg.imread(png)
    assert img.shape[0] == HEIGHT and img.shape[1] == WIDTH
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = {tuple(c) for c in rgb[:: 7]}
    assert len(colours) > 500, "the screenshot looks blank (%d colours)" % len(colours)
    # the plot colours are on screen: stable blue and canary red lines

    def near(target, tol=40):
        return int((np.abs(rgb.astype(int) - np.array(target)).sum(axis=1) < tol).sum())
    assert near((0x1f, 0x77, 0xb4)) > 500  # stable
    assert near((0xd6, 0x27, 0x28)) > 500  # canary
    white = int((rgb.min(axis=1) > 245).sum())
    assert white < 0.9 * len(rgb)


def test_report_cli_from_json_with_missing_sections(tmp_path):
    """A run that stopped early (no judge, no rollback) still gives a report."""
    run = {"started_at": 1000.0, "finished_at": 1010.0,
           "samples": [{"t": 1000.0 + i, "slot": "stable", "version": "v1", "error_rate": 0.0, "p50_ms": 1,
                        "p95_ms": 2, "p99_ms": 3} for i in range(10)]}
    inp = tmp_path / "run.json"
    inp.write_text(json.dumps(run))
    res = subprocess.run([sys.executable, "-m", "demo.report", "--input", str(inp), "--out", str(tmp_path / "r")],
                         cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert res.returncode == 0, res.stderr
    assert os.path.exists(res.stdout.strip())
