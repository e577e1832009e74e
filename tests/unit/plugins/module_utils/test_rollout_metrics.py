import multiprocessing
import os

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import rollout_metrics as rm


def test_counter_increments_and_gauge_sets(tmp_path):
    path = str(tmp_path / "m.prom")
    changed, before, after, touched = rm.update_file(path, [
        {"name": "stagegate_rollout_rollbacks_total", "labels": {"phase": "canary", "release": "v3"}, "inc": 1},
        {"name": "stagegate_rollout_canary_weight_percent", "labels": {"service": "s"}, "set": 25}])
    assert changed and before == ""
    assert 'stagegate_rollout_rollbacks_total{phase="canary",release="v3"} 1\n' in after
    assert "# TYPE stagegate_rollout_rollbacks_total counter" in after
    rm.update_file(path, [{"name": "stagegate_rollout_rollbacks_total", "labels": {"release": "v3", "phase": "canary"},
                           "inc": 2}])
    fams = rm.parse(open(path).read())
    assert fams["stagegate_rollout_rollbacks_total"]["samples"][(("phase", "canary"), ("release", "v3"))] == 3
    assert fams["stagegate_rollout_canary_weight_percent"]["samples"][(("service", "s"),)] == 25


def test_setting_a_gauge_to_its_value_is_not_a_change(tmp_path):
    path = str(tmp_path / "m.prom")
    upd = [{"name": "stagegate_rollout_progress_ratio", "labels": {"release": "v2"}, "set": 0.5}]
    assert rm.update_file(path, upd)[0] is True
    assert rm.update_file(path, upd)[0] is False


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "m.prom")
    update = [{"name": "x_total", "type": "counter", "inc": 1}]
    changed, dummy_before, after, dummy_touched = rm.update_file(path, update, check_mode=True)
    assert changed and "x_total 1" in after
    assert not os.path.exists(path)


def test_label_values_are_escaped_and_read_back(tmp_path):
    path = str(tmp_path / "m.prom")
    value = 'a "quoted"\\ value\nnext'
    rm.update_file(path, [{"name": "g", "labels": {"reason": value}, "set": 1}])
    fams = rm.parse(open(path).read())
    assert fams["g"]["samples"] == {(("reason", value),): 1.0}


@pytest.mark.parametrize("update, field", [
    ({"name": "9bad", "set": 1}, "metrics[0].name"),
    ({"name": "ok", "set": 1, "type": "histogram"}, "metrics[0].type"),
    ({"name": "stagegate_rollout_rollbacks_total", "type": "gauge", "set": 1}, "metrics[0].type"),
    ({"name": "ok", "labels": {"bad-name": "x"}, "set": 1}, "metrics[0].labels"),
    ({"name": "ok", "labels": {"__name__": "x"}, "set": 1}, "metrics[0].labels"),
    ({"name": "ok", "labels": ["a"], "set": 1}, "metrics[0].labels"),
    ({"name": "ok"}, "exactly one of inc or set"),
    ({"name": "ok", "inc": 1, "set": 1}, "exactly one of inc or set"),
    ({"name": "ok", "set": "many"}, "metrics[0].set"),
    ({"name": "ok", "set": float("nan")}, "finite"),
    ({"name": "stagegate_rollout_rollbacks_total", "inc": -1}, "counter"),
    ({"name": "stagegate_rollout_rollbacks_total", "set": 3}, "counter"),
])
def test_bad_updates_are_refused_before_the_file_is_touched(tmp_path, update, field):
    path = tmp_path / "m.prom"
    path.write_text("keep 1\n")
    with pytest.raises(rm.RolloutMetricsError, match=r".*%s" % field.replace("[", r"\[").replace("]", r"\]")):
        rm.update_file(str(path), [update])
    assert path.read_text() == "keep 1\n"


def test_a_bad_second_update_leaves_the_first_unapplied(tmp_path):
    path = tmp_path / "m.prom"
    with pytest.raises(rm.RolloutMetricsError, match=r"metrics\[1\]\.name"):
        rm.update_file(str(path), [{"name": "ok", "set": 1}, {"name": "no good", "set": 1}])
    assert not path.exists()


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(rm.RolloutMetricsError, match="does not exist"):
        rm.update_file(str(tmp_path / "nope" / "m.prom"), [{"name": "ok", "set": 1}])


def _bump(path):
    for dummy in range(50):
        rm.update_file(path, [{"name": "stagegate_rollout_analysis_runs_total", "inc": 1}])


def test_concurrent_increments_are_never_lost(tmp_path):
    path = str(tmp_path / "m.prom")
    procs = [multiprocessing.Process(target=_bump, args=(path,)) for dummy in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    fams = rm.parse(open(path).read())
    assert fams["stagegate_rollout_analysis_runs_total"]["samples"][()] == 200
