"""The whole user path on tiny data, through the real `edge` command in subprocesses:
synth -> train -> resume -> eval -> export (fp32 + INT8) -> run (mp4 + jsonl) -> bench -> bad inputs."""

import json

import cv2
import pytest
from e2e_helpers import edge, offline_probabilities, synth

from edge.machine import cpu_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def data(workdir):
    return synth(workdir / "data", videos_per_class=4, seed=3, frames=16)


@pytest.fixture(scope="module")
def run_dir(workdir, data):
    out = workdir / "run"
    common = ["--model", "tsm_resnet18", "--data", data, "--out", out, "--segments", 4, "--width", 8,
              "--size", 32, "--batch-size", 4]
    r = edge("train", *common, "--epochs", 1)
    assert "data: train 12 videos, 0 skipped (unreadable); test 4 videos, 0 skipped" in r.stderr
    first = json.loads((out / "history.json").read_text())
    edge("train", *common, "--epochs", 2, "--resume")
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]
    return out


def test_checkpoint_follows_the_contract(run_dir):
    import torch

    ckpt = torch.load(run_dir / "best.pt", weights_only=False)
    assert {"model", "config", "state_dict", "labels", "input"} <= set(ckpt)
    assert ckpt["model"] == "tsm_resnet18" and len(ckpt["labels"]) == 4
    assert ckpt["input"]["clip"]["num_segments"] == 4 and ckpt["input"]["preprocess"]["size"] == 32


@pytest.fixture(scope="module")
def bundle(workdir, run_dir, data):
    out = workdir / "bundle"
    r = edge("export", "--ckpt", run_dir / "best.pt", "--out", out, "--int8", "--calib", data)
    assert "parity" in r.stdout
    return out


@pytest.fixture(scope="module")
def evaluation(workdir, run_dir, data):
    out = workdir / "eval.json"
    r = edge("eval", "--ckpt", run_dir / "best.pt", "--data", data, "--json", out)
    result = json.loads(out.read_text())
    assert f"test clip accuracy {result['accuracy']:.3f} on 4 clips" in r.stdout
    return result


def test_eval_reports_what_training_validated(evaluation, run_dir):
    import torch

    best = torch.load(run_dir / "best.pt", weights_only=False)["train_state"]
    assert evaluation["accuracy"] == pytest.approx(best["best"])  # same split, same sampling, same model
    assert evaluation["confusion"] == best["val"]["confusion"]
    confusion = evaluation["confusion"]
    assert evaluation["per_class"] == {lab: confusion[i][i] / sum(confusion[i])
                                       for i, lab in enumerate(evaluation["labels"])}
    assert evaluation["order_accuracy"] is not None  # the synthetic set's classes come in reversal pairs


def test_bundle_matches_the_checkpoint_in_outputs_and_accuracy(bundle, run_dir, data, evaluation):
    import numpy as np
    import onnxruntime as ort

    from train.engine import Checkpoint
    from train.run import load_test_dataset

    m = json.loads((bundle / "manifest.json").read_text())
    assert set(m["files"]) >= {"fp32", "int8", "checkpoint", "labels"}
    ckpt = Checkpoint.load(run_dir / "best.pt")
    clips = np.stack([x.numpy() for x, _ in load_test_dataset(ckpt, data)])
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: clips})[0]
    import torch

    with torch.no_grad():
        torch_logits = ckpt.build()(torch.from_numpy(clips)).numpy()
    assert np.abs(onnx_logits - torch_logits).max() <= 1e-4  # every test clip, not only the exporter's one
    assert m["accuracy"]["fp32"] == pytest.approx(evaluation["accuracy"])
    assert abs(m["accuracy"]["int8"] - m["accuracy"]["fp32"]) <= 0.25  # at most one of 4 clips flips
    assert (bundle / "model.int8.onnx").stat().st_size < (bundle / "model.onnx").stat().st_size / 2
    info = edge("info", bundle)
    assert json.loads(info.stdout)["labels"] == m["labels"] == ckpt.labels


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_run_on_a_held_out_video_writes_playable_mp4_and_events(bundle, data, workdir, precision):
    rel = (data / "splits" / "testlist01.txt").read_text().split()[0]
    video = data / rel
    mp4, events = workdir / f"annotated_{precision}.mp4", workdir / f"events_{precision}.jsonl"
    edge("run", "--model", bundle, "--source", f"file://{video}", "--precision", precision,
         "--output", f"file://{mp4}", "--output", f"json://{events}")
    cap = cv2.VideoCapture(str(mp4))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == (48, 48) and abs(n - 16) <= 1
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    # the 16-frame video fills the 16-frame window once: one decision, on the very frames eval samples,
    # so the runtime's probabilities are the offline model's (up to decoder rounding and INT8)
    assert len(lines) == 1 and lines[0]["frame"] == 15 and len(lines[0]["top5"]) == 4  # 4 classes -> top-4
    offline = offline_probabilities(bundle, video)
    tol = 0.02 if precision == "fp32" else 0.15
    assert {lab: p for lab, p in lines[0]["top5"]} == pytest.approx(offline, abs=tol)
    assert lines[0]["label"] == max(lines[0]["top5"], key=lambda kv: kv[1])[0]


def test_bench_measures_every_row(bundle, data, workdir, evaluation):
    out = workdir / "bench.json"
    edge("bench", "--model", bundle, "--data", data, "--iters", 3, "--json", out)
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["cpu"] == cpu_name()  # the speeds name the CPU they were measured on
    assert [(r["backend"], r["precision"]) for r in rows] == [("torch-cpu", "fp32"), ("ort-cpu", "fp32"),
                                                               ("ort-cpu", "int8")]
    for r in rows:
        assert r["clips_per_s"] > 0 and r["latency_ms_p95"] >= r["latency_ms_p50"] > 0
    assert rows[0]["accuracy"] == rows[1]["accuracy"] == pytest.approx(evaluation["accuracy"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert rows[2]["accuracy"] == pytest.approx(manifest["accuracy"]["int8"])
    sizes = {r["precision"]: r["size_mb"] for r in rows[1:]}
    assert sizes["fp32"] == pytest.approx((bundle / "model.onnx").stat().st_size / 2**20, rel=1e-6)
    assert sizes["int8"] == pytest.approx((bundle / "model.int8.onnx").stat().st_size / 2**20, rel=1e-6)


@pytest.mark.parametrize("args, needle", [
    (["run", "--model", "/nonexistent", "--source", "test://", "--output", "json:///tmp/x.jsonl"], "bundle"),
    (["export", "--ckpt", "/nonexistent.pt", "--out", "/tmp/never"], "nonexistent.pt"),
    (["train", "--model", "tsm_resnet18", "--data", "/nonexistent", "--out", "/tmp/never"], "nonexistent"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    r = edge(*args, check=False)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_checkpoint_is_one_line_and_exit_2(data, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint\n")
    r = edge("eval", "--ckpt", bad, "--data", data, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint {bad}: not an edge checkpoint")


def test_missing_source_file_is_one_line_and_exit_2(bundle, workdir):
    r = edge("run", "--model", bundle, "--source", f"file://{workdir}/nope.mp4", "--output",
             f"json://{workdir}/never.jsonl", check=False)
    assert r.returncode == 2 and "nope.mp4" in r.stderr and "Traceback" not in r.stderr
    assert not (workdir / "never.jsonl").exists()
