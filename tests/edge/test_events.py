"""Decisions into actions: EMA smoothing, thresholds with hysteresis from the command line and from a TOML
file (and their one-line errors), the start/end events on hand-made score sequences, and the events in the
json output of a real pipeline run."""

import json

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError
from edge.events import ActionTracker, Ema, Thresholds

LABELS = ["red", "green", "blue"]


def test_ema_weights_the_newest_vector_by_alpha():
    ema = Ema(0.25)
    assert ema(np.array([1.0, 0.0])).tolist() == [1.0, 0.0]  # starts from the first vector
    assert ema(np.array([0.0, 1.0])).tolist() == [0.75, 0.25]
    assert ema(np.array([0.0, 1.0])).tolist() == pytest.approx([0.5625, 0.4375])
    with pytest.raises(EdgeError, match=r"--ema 0.0: expected a weight in \(0, 1\]"):
        Ema(0.0)


def test_thresholds_from_the_command_line_and_a_file(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text('blue = 0.9\ngreen = {on = 0.8, off = 0.3}\n')
    t = Thresholds.build(LABELS, threshold=0.6, hysteresis=0.2, path=f)
    assert t.on == {0: 0.6, 1: 0.8, 2: 0.9}
    assert t.off == pytest.approx({0: 0.4, 1: 0.3, 2: 0.7})
    only_file = Thresholds.build(LABELS, path=f)
    assert set(only_file.on) == {1, 2}  # red has no threshold: it never starts an action
    assert Thresholds.build(LABELS) is None


@pytest.mark.parametrize("text, message", [
    ('purple = 0.5', "'purple' is not one of the model's labels"),
    ('red = "high"', "red = 'high'; expected a number or {on = P, off = Q}"),
    ('red = {on = 0.5, off = 0.7}', "red: expected 0 < on <= 1 and 0 <= off <= on (got on 0.5, off 0.7)"),
    ('red = [', "not valid TOML"),
])
def test_bad_threshold_files_are_one_line_errors(tmp_path, text, message):
    f = tmp_path / "t.toml"
    f.write_text(text)
    with pytest.raises(EdgeError, match=f"--thresholds {f}: .*{message[:20].replace('(', '.').replace('[', '.')}"):
        Thresholds.build(LABELS, path=f)
    with pytest.raises(EdgeError, match="no such file"):
        Thresholds.build(LABELS, path=tmp_path / "missing.toml")
    with pytest.raises(EdgeError, match="--threshold 1.5 / --hysteresis 0.1: expected 0 < on <= 1"):
        Thresholds.build(LABELS, threshold=1.5)


def run_tracker(scores, on, off):
    tracker = ActionTracker(["a", "b"], Thresholds({0: on}, {0: off}))
    events = []
    for i, p in enumerate(scores):
        events += tracker.update(np.array([p, 1 - p]), t=i / 10, frame=i)
    return events + tracker.finish(t=len(scores) / 10, frame=len(scores))


def test_hysteresis_keeps_a_hovering_score_from_flickering():
    scores = [0.2, 0.75, 0.65, 0.69, 0.72, 0.55, 0.8]
    with_gap = run_tracker(scores, on=0.7, off=0.6)
    assert [(e["event"], e["frame"]) for e in with_gap] == [
        ("action_started", 1), ("action_ended", 5), ("action_started", 6), ("action_ended", 7)]
    ended = with_gap[1]
    assert ended["started_frame"] == 1 and ended["duration_s"] == pytest.approx(0.4)
    assert ended["reason"] == "below threshold" and ended["score"] == 0.55
    assert with_gap[-1]["reason"] == "end of stream" and with_gap[-1]["score"] is None
    no_gap = run_tracker(scores, on=0.7, off=0.7)  # the same scores flicker without hysteresis
    assert [e["frame"] for e in no_gap] == [1, 2, 4, 5, 6, 7]  # two more on/off flips


def test_events_in_the_json_output_of_a_run(color_bundle, tmp_path):
    pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
    from edge.backends import open_backend
    from edge.pipeline import Decisions, run

    video = tmp_path / "v.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (32, 32))
    for i in range(32):
        vw.write(np.full((32, 32, 3), (20, 20, 230) if i < 16 else (230, 20, 20), np.uint8))  # red, then blue
    vw.release()
    out = tmp_path / "ev.jsonl"
    run(color_bundle, open_backend(color_bundle), f"file://{video}", [f"json://{out}"],
        decisions=Decisions(thresholds=Thresholds.build(LABELS, threshold=0.6)))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    events = [(e["event"], e["label"]) for e in lines if "event" in e]
    assert events == [("action_started", "red"), ("action_ended", "red"), ("action_started", "blue"),
                      ("action_ended", "blue")]
    assert lines[-1]["reason"] == "end of stream" and lines[-1]["frame"] == 32
    decisions = [e for e in lines if "event" not in e]
    assert len(decisions) == 7  # one line per decision as before: frames 7, 11, ..., 31
