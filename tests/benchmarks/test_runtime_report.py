"""The runtime benchmark's own logic: the per-frame model timed the way `edge run --mode online` calls it
(next frame of the clip each call, buffers carried), and the page rendered from a run's figures."""

import time

import numpy as np
import torch

from benchmarks.runtime import REPEATS, FrameStep, IdleBackend, markdown
from edge.backends.ort import OrtBackend
from export.online import export_online, run_frames
from train.models import build_model


def test_frame_step_walks_the_clip_and_carries_the_buffers(tmp_path):
    torch.manual_seed(0)
    model = build_model("tsm_online_resnet18", num_classes=3, num_segments=4, width=16).eval()
    for m in model.modules():  # the residual branches start at zero (zero-init last BN): open them, so the
        if isinstance(m, torch.nn.BatchNorm2d):  # shifted channels, and so the buffers, reach the logits
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    buffers = export_online(model, (3, 32, 32), tmp_path / "step.onnx")
    clip = np.random.default_rng(0).standard_normal((1, 4, 3, 32, 32)).astype(np.float32)
    step = FrameStep(tmp_path / "step.onnx", buffers)
    got = np.stack([step.infer(clip)[0] for _ in range(8)])  # twice round the clip, never reset
    want = run_frames(OrtBackend(tmp_path / "step.onnx").session, buffers, np.concatenate([clip, clip], axis=1))[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert not np.allclose(got[4], got[0], atol=1e-4)  # frame 4 sees frame 3's buffer, frame 0 saw zeros


def test_the_stand_in_uses_no_cpu_and_returns_one_row_per_clip():
    stand_in = IdleBackend(0.02, classes=5)
    wall, cpu = time.perf_counter(), time.process_time()
    out = stand_in.infer(np.zeros((3, 8, 3, 16, 16), np.float32))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert out.shape == (3, 5) and not out.any()
    assert wall >= 0.02 and cpu < 0.01  # it waits, as a call to a GPU does, without using these cores


def test_the_page_has_the_medians_their_ratio_and_the_latency_goal():
    pipeline = [{"threads": "default", "backend_clips_per_s": 600.0, "pipeline_decisions_per_s": 300.0,
                 "frames": 1152, "ratio": 0.5, "backend_runs": [590.0, 600.0, 610.0],
                 "pipeline_runs": [280.0, 300.0, 350.0]},
                {"threads": "stand-in", "backend_clips_per_s": 400.0, "pipeline_decisions_per_s": 380.0,
                 "frames": 1152, "ratio": 0.95, "backend_runs": [400.0] * 3, "pipeline_runs": [380.0] * 3}]
    result = {"cpu": "Test CPU", "seconds": 90, "load": "1.00 / 1.00 / 1.00", "setup": "a setup",
              "models": {"tsm_resnet18": {"accuracy": 0.9, "order_accuracy": 0.95}},
              "latency": {"demo 8x64x64:fp32": {"clip_ms": 2.0, "frame_ms": 0.4, "frames_per_clip": 8,
                                                "frame_vs_clip_over_t": 1.6}},
              "pipeline": pipeline, "streams": []}
    page = markdown(result)
    assert "on Test CPU (90 s)" in page and "over 1152 frames" in page
    assert f"timed {REPEATS} times each, alternated; the table has the medians" in page
    assert "| ONNX Runtime, default threads | 600.0 | 300.0 | 50% |" in page
    assert "| CPU-free stand-in (sleeps the 1-thread clip time) | 400.0 | 380.0 | 95% |" in page
    assert "| demo 8x64x64 | fp32 | 2.000 | 0.400 | 8 | 1.60 |" in page
    assert "as `edge run --mode online` runs one stream" in page
