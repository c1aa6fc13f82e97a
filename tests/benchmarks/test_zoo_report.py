"""The zoo benchmark's own logic: the page rendered from its rows (a missing figure shows why), each model's
paper geometry, a training decision for every registered model, time-bounded throughput, and one real
measurement of a tiny model."""

import time

import numpy as np
import torch

from benchmarks.common import MIN_RUNS, clips_per_s
from benchmarks.zoo import (
    TRAIN,
    Train,
    markdown,
    measure,
    paper_geometry,
    plot,
)
from train.models import build_model, list_models

DEMO_2D = {"width": 16, "size": 64, "segments": 8, "epochs": 16, "options": {}}
RESULTS = {
    "cpu": "Test CPU", "cores": 2, "date": "2026-01-02", "quick": False, "seconds": 3600,
    "load_average": [1.0, 1.5, 2.0],
    "data": {"classes": 12, "videos_per_class": 48, "frames": 32, "size": 96, "train_videos": 432,
             "test_videos": 144},
    "speed": {"runs": 20, "rounds": 3, "budget_s": 2.5},
    "rows": [
        {"model": "tsn_resnet18", "family": "TSN", "paper_input": [1, 8, 3, 224, 224], "sampling": "segments",
         "params": 11_220_000, "gmacs": 14.5123, "fp32_clips_per_s": 4.04, "int8_clips_per_s": 10.1,
         "trained_at": DEMO_2D, "accuracy": 0.4861, "order_accuracy": 0.56, "train_minutes": 1.26},
        {"model": "c3d_b5", "family": "C3D", "paper_input": [1, 16, 3, 112, 112], "sampling": "clips",
         "params": 17_444_965, "gmacs": 19.26, "fp32_clips_per_s": 3.1, "int8_clips_per_s": 6.2,
         "trained_at": {**DEMO_2D, "size": 32, "segments": 16}, "accuracy": 0.9, "order_accuracy": 0.921,
         "train_minutes": 4.04},
        {"model": "b8_asyconv3", "family": "C3D-b8 + asymmetric conv", "paper_input": [1, 16, 3, 112, 112],
         "sampling": "clips", "params": 76_443_749, "gmacs": 40.0, "fp32_clips_per_s": 1.0,
         "int8_clips_per_s": 0.5, "reason": "not trained: a variant; at w16 32px 16f 16ep one epoch takes about "
                                            "0.9 min here (14 min for 16)"},
        {"model": "tc3d_res3d18", "family": "T-C3D", "paper_input": [1, 24, 3, 112, 112], "sampling": "clips",
         "params": 33_218_085, "gmacs": 25.0, "fp32_clips_per_s": 2.0, "int8_clips_per_s": 3.0,
         "trained_at": {**DEMO_2D, "size": 32, "segments": 12, "options": {"clip_len": 4}}, "accuracy": 0.7,
         "order_accuracy": 0.5, "all_clips_accuracy": 0.75, "train_minutes": 3.0},
        {"model": "momp_caffenet", "family": "MOMP CaffeNet", "paper_input": [1, 1, 3, 227, 227],
         "sampling": "segments", "speed_error": "RuntimeError: boom", "trained_at": {**DEMO_2D, "segments": 1},
         "reason": "training failed: ValueError: bad"},
    ],
}


def test_the_table_has_one_row_per_model_with_measured_cells_or_the_reason():
    md = markdown(RESULTS)
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `tsn_resnet18` | TSN | 8x224x224 | 11.22 | 14.51 | 4.0 | 10.1 | 2.50x | w16 64px 8f 16ep | 0.486 | "
        "0.560 | 1.3 |",
        "| `c3d_b5` | C3D | 16x112x112 | 17.44 | 19.26 | 3.1 | 6.2 | 2.00x | w16 32px 16f 16ep | 0.900 | 0.921 | "
        "4.0 |",
        "| `b8_asyconv3` | C3D-b8 + asymmetric conv | 16x112x112 | 76.44 | 40.00 | 1.0 | 0.5 | 0.50x | - | - | - | "
        "not trained: a variant; at w16 32px 16f 16ep one epoch takes about 0.9 min here (14 min for 16) |",
        "| `tc3d_res3d18` | T-C3D | 24x112x112 | 33.22 | 25.00 | 2.0 | 3.0 | 1.50x | w16 32px 12f 16ep clip_len=4 | "
        "0.700 | 0.500 | 3.0 |",
        "| `momp_caffenet` | MOMP CaffeNet | 1x227x227 | - | - | - | - | - | w16 64px 1f 16ep | - | - | "
        "training failed: ValueError: bad; speed not measured: RuntimeError: boom |",
    ]
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    assert header.count("|") == rows[0].count("|")  # every row fills every column


def test_the_header_names_the_machine_the_run_and_the_order_comparison():
    md = markdown(RESULTS)
    assert "on Test CPU (2 cores), 2026-01-02: 60 min in one run" in md
    assert "432 training and 144 test videos of 32 frames at 96 px; chance 0.083" in md
    assert "3 interleaved rounds of up to 20 calls or 2.5 s per precision" in md
    assert ("Geometries used: w16 32px 12f 16ep clip_len=4; w16 32px 16f 16ep; w16 64px 1f 16ep; "
            "w16 64px 8f 16ep.") in md
    # the clip-fed 3D CNNs' order accuracy against TSN's, counted from the rows
    assert ("Order accuracy: TSN 0.560 (`tsn_resnet18`); the clip-fed 3D CNNs 0.500 (`tc3d_res3d18`) to 0.921, "
            "1 of 2 above the best TSN.") in md
    assert "![accuracy against ORT fp32 latency](zoo.png)" in md
    assert "(--quick)" not in md and "(--quick)" in markdown({**RESULTS, "quick": True, "seconds": 40})
    assert ": 40 s in one run" in markdown({**RESULTS, "seconds": 40})


def test_the_plot_has_a_point_for_each_model_with_accuracy_and_speed(tmp_path):
    shown = plot(RESULTS["rows"], tmp_path / "zoo.png")
    assert shown == ["tsn_resnet18", "c3d_b5", "tc3d_res3d18"]
    assert (tmp_path / "zoo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_geometry_is_read_off_each_model():
    assert paper_geometry("tsm_resnet18") == ({"num_classes": 101}, (1, 8, 3, 224, 224))
    assert paper_geometry("c3d_b8")[1] == (1, 16, 3, 112, 112)
    assert paper_geometry("res3d18")[1] == (1, 8, 3, 112, 112)
    assert paper_geometry("tc3d_res3d18")[1] == (1, 24, 3, 112, 112)  # S = 3 clips of L = 8
    assert paper_geometry("momp_caffenet")[1] == (1, 1, 3, 227, 227)
    assert paper_geometry("tsm_mobilenetv2") == ({"num_classes": 101}, (1, 8, 3, 224, 224))


def test_every_registered_model_is_trained():
    assert set(TRAIN) == set(list_models()) and all(isinstance(t, Train) for t in TRAIN.values())
    assert TRAIN["tc3d_res3d18"].segments == 12 and TRAIN["tc3d_res3d18"].options == {"clip_len": 4}
    assert TRAIN["c3d_b8"].segments == 16 and TRAIN["tsm_mobilenetv2"].width == 0.5


class Sleeper:
    """A backend whose every call takes ``delay`` seconds, counting its calls."""

    name, precision = "sleeper", "fp32"

    def __init__(self, delay: float) -> None:
        self.delay, self.calls = delay, 0

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(self.delay)
        return clip


def test_a_time_budget_bounds_each_round_but_keeps_the_minimum_runs():
    clip = np.zeros((1, 2), np.float32)
    fixed = Sleeper(0.001)
    clips_per_s({"a": fixed}, clip, runs=4, rounds=2)  # no budget: 5 warm-up calls + 4 timed, per round
    assert fixed.calls == 2 * (5 + 4)
    tight = Sleeper(0.001)
    clips_per_s({"a": tight}, clip, runs=100, rounds=2, budget_s=0.0)  # 1 warm-up + the minimum, per round
    assert tight.calls == 2 * (1 + MIN_RUNS)
    slow = Sleeper(0.02)
    speed = clips_per_s({"a": slow}, clip, runs=1000, rounds=2, budget_s=0.1)
    assert slow.calls <= 2 * (1 + 6)  # stopped near 0.1 s a round, not after 1000 calls
    assert 20 < speed["a"] < 50.5  # 20 ms a call at best


def test_a_real_measurement_counts_the_torch_parameters_and_times_both_precisions(tmp_path):
    config = {"num_classes": 5, "num_segments": 4, "width": 4, "size": 32}
    r = measure("c3d_b5", config, (1, 4, 3, 32, 32), tmp_path / "onnx", runs=3, rounds=1, budget_s=0.1)
    torch_params = sum(p.numel() for p in build_model("c3d_b5", **config).parameters())
    assert r["params"] == r["torch_params"] == torch_params  # C3D has no BatchNorm to fold
    assert r["gmacs"] > 0 and r["fp32_clips_per_s"] > 0 and r["int8_clips_per_s"] > 0
    assert not (tmp_path / "onnx").exists()  # the ONNX files are gone once measured


def test_folded_batchnorm_is_the_only_parameter_difference_of_an_untrained_resnet(tmp_path):
    # the zero-init last BN of each residual block folds into an all-zero conv; without the spread onnxsim
    # would store identical ones once and the graph would count fewer parameters
    config = {"num_classes": 5, "num_segments": 2, "width": 4}
    r = measure("tsm_resnet18", config, (1, 2, 3, 32, 32), tmp_path / "onnx", runs=3, rounds=1, budget_s=0.1)
    bn = sum(m.num_features for m in build_model("tsm_resnet18", **config).modules()
             if isinstance(m, torch.nn.BatchNorm2d))
    assert r["params"] == r["torch_params"] - bn  # gamma and beta of each BN become one conv bias
