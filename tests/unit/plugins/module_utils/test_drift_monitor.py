# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CUSUM drift monitor: textbook ARLs by simulation, state, reset, escalation, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.drift_monitor import (
    Cusum, DriftError, siegmund_arl)
from tests.unit.module_run import run_module_main


def run_length(rng, shift, k=0.5, h=5.0, cap=100000):
    c = Cusum(target=0.0, sigma=1.0, k=k, h=h)
    for n in range(1, cap + 1):
        if c.update(rng.gauss(shift, 1.0), now=n)["alarm"]:
            return n
    return cap


def test_arl0_two_sided_k05_h5():
    """Textbook: ARL0 ~ 465 (two-sided, k=0.5, h=5).  1,200 runs: standard error ~13."""
    rng = random.Random(2024)
    runs = [run_length(rng, 0.0) for dummy in range(1200)]
    arl0 = sum(runs) / len(runs)
    assert 420 <= arl0 <= 510, arl0


def test_arl1_one_sigma_shift():
    """Textbook: ARL1 ~ 10.4 at a 1 sigma shift."""
    rng = random.Random(7)
    runs = [run_length(rng, 1.0) for dummy in range(3000)]
    arl1 = sum(runs) / len(runs)
    assert 9.9 <= arl1 <= 10.9, arl1


def test_downward_shift_alarms_with_direction():
    rng = random.Random(3)
    c = Cusum(target=10.0, sigma=2.0)
    st = None
    for n in range(200):
        st = c.update(rng.gauss(6.0, 2.0), now=n)
        if st["alarm"]:
            break
    assert st["alarm"] and st["direction"] == "down"


def test_siegmund_approximation_matches_textbook():
    assert siegmund_arl(0.5, 5.0) == pytest.approx(469, rel=0.02)
    assert siegmund_arl(0.5, 5.0, shift=1.0) == pytest.approx(10.4, rel=0.03)


def test_escalation_after_configured_duration_and_reset():
    c = Cusum(target=0.0, sigma=1.0, escalate_after=3600)
    t = 0
    st = None
    while True:
        t += 60
        st = c.update(3.0, now=t)
        if st["alarm"]:
            break
    since = st["alarm_since"]
    assert not st["escalate"]
    st = c.update(3.0, now=since + 3599)
    assert st["alarm"] and not st["escalate"]
    st = c.update(3.0, now=since + 3600)
    assert st["escalate"] and st["alarm_seconds"] == 3600
    c.reset(now=since + 4000)
    st = c.status(now=since + 4000)
    assert not st["alarm"] and not st["escalate"] and st["s_pos"] == 0 and st["n"] == 0


def test_alarm_clears_when_process_returns():
    c = Cusum(target=0.0, sigma=1.0, h=2.0)
    for n in range(5):
        c.update(2.0, now=n)
    assert c.status(now=5)["alarm"]
    for n in range(5, 30):
        st = c.update(0.0, now=n)
    assert not st["alarm"]


def test_state_roundtrip():
    rng = random.Random(1)
    a = Cusum(target=1.0, sigma=0.5)
    b = Cusum(target=1.0, sigma=0.5)
    for n in range(300):
        x = rng.gauss(1.2, 0.5)
        sa = a.update(x, now=n)
        b = Cusum.from_state(json.loads(json.dumps(b.to_state())))
        sb = b.update(x, now=n)
        assert sa == sb


def test_warmup_calibrates_target_and_sigma():
    rng = random.Random(5)
    c = Cusum(warmup=200)
    for n in range(200):
        st = c.update(rng.gauss(50.0, 4.0), now=n)
    assert st["calibrated"] and st["n"] == 0
    assert st["target"] == pytest.approx(50.0, abs=1.0)
    assert st["sigma"] == pytest.approx(4.0, rel=0.15)


@pytest.mark.parametrize("kwargs,field", [
    ({"sigma": 0}, "sigma"), ({"sigma": -1}, "sigma"), ({"h": 0}, "h"), ({"k": -0.5}, "k"),
    ({"escalate_after": -1}, "escalate_after"), ({"warmup": 1}, "warmup"), ({"target": "abc"}, "target"),
])
def test_bad_parameters(kwargs, field):
    with pytest.raises(DriftError, match=field):
        Cusum(**kwargs)


def test_bad_value():
    c = Cusum(target=0, sigma=1)
    with pytest.raises(DriftError, match="value"):
        c.update(float("nan"))
    with pytest.raises(DriftError, match="value"):
        c.update("fast")


def test_constant_warmup_needs_sigma():
    c = Cusum(warmup=3)
    c.update(1.0)
    c.update(1.0)
    with pytest.raises(DriftError, match="sigma"):
        c.update(1.0)


# --------------------------------------------------------------------------
# the stagegate.rollout.drift_monitor module (thin wrapper)
# --------------------------------------------------------------------------

def run_module(args, capsys, check=False):
    from ansible_collections.stagegate.rollout.plugins.modules import drift_monitor as mod
    return run_module_main(mod, args, capsys, check)[1]


def test_module_alarm_persist_escalate_reset(tmp_path, capsys):
    sf = str(tmp_path / "drift.json")
    out = run_module({"values": [3.0] * 3, "target": 0, "sigma": 1, "state_file": sf, "escalate_after": "0s"},
                     capsys, check=True)
    assert out["alarm"] and out["changed"]
    assert not (tmp_path / "drift.json").exists()
    out = run_module({"values": [3.0] * 2, "target": 0, "sigma": 1, "state_file": sf, "escalate_after": "24h"}, capsys)
    assert not out["alarm"] and out["s_pos"] == pytest.approx(5.0)
    out = run_module({"value": 3.0, "target": 0, "sigma": 1, "state_file": sf, "escalate_after": "24h"}, capsys)
    assert out["alarm"] and out["direction"] == "up" and not out["escalate"]
    out = run_module({"value": 3.0, "state_file": sf, "escalate_after": "0s"}, capsys)
    assert out["alarm"] and out["escalate"]
    out = run_module({"reset": True, "state_file": sf}, capsys)
    assert not out["alarm"] and out["s_pos"] == 0 and out["n"] == 0


def test_module_bad_input(tmp_path, capsys):
    out = run_module({"value": 1.0, "escalate_after": "soon"}, capsys)
    assert out["failed"] and "escalate_after" in out["msg"]
    out = run_module({"value": 1.0, "sigma": -1}, capsys)
    assert out["failed"] and "sigma" in out["msg"]
    out = run_module({"target": 0, "sigma": 1}, capsys)
    assert out["failed"] and "value" in out["msg"]
