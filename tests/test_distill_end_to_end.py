"""Motion distillation through the user's commands on real videos: a flow stream (`edge train --input flow`),
an RGB student of it (`edge train --distill --teacher`) that exports and runs with no flow anywhere, and the
attention fusion of the two (`edge train --fusion --streams`), exported as one bundle with two inputs that
`edge run` feeds with the flow it computes from the frames - its decision on a held-out video equals the
offline model's on that video's test clip, and the flow's cost per frame is reported."""

import json

import pytest
import torch
from e2e_helpers import edge, synth

pytestmark = pytest.mark.slow
FRAMES = 21
GEOMETRY = ["--segments", 4, "--size", 32, "--width", 8, "--epochs", 2, "--batch-size", 4]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("distill")
    data = synth(work / "data", videos_per_class=3, seed=8, frames=FRAMES)
    edge("train", "--model", "res3d18", "--data", data, "--out", work / "flow", "--input", "flow",
         "--flow-method", "farneback", *GEOMETRY)
    edge("train", "--model", "res3d18", "--data", data, "--out", work / "student", "--distill", "--teacher",
         work / "flow" / "best.pt", *GEOMETRY)
    edge("train", "--fusion", "--streams", work / "student" / "best.pt", work / "flow" / "best.pt", "--data", data,
         "--out", work / "fused", "--epochs", 2, "--batch-size", 4)
    for run in ("student", "fused"):
        edge("export", "--ckpt", work / run / "best.pt", "--out", work / f"{run}-bundle")
    return work, data


def held_out(data):
    return data / (data / "splits" / "testlist01.txt").read_text().split()[0]


def test_the_student_deploys_as_an_rgb_model(runs):
    work, data = runs
    manifest = json.loads((work / "student-bundle" / "manifest.json").read_text())
    assert "flow" not in manifest and "motion" not in manifest
    assert manifest["input"]["shape"] == [1, 4, 3, 32, 32]
    events = work / "student.jsonl"
    r = edge("run", "--model", work / "student-bundle", "--source", f"file://{held_out(data)}", "--output",
             f"json://{events}")
    assert [json.loads(x)["frame"] for x in events.read_text().splitlines()] == [FRAMES - 1]
    assert "latency ms p50/p95/p99: capture" in r.stdout + r.stderr and "; flow " not in r.stdout + r.stderr


def test_the_fused_bundle_has_two_inputs_and_the_runtime_computes_the_flow(runs):
    from train.data import clip_dataset
    from train.data.datasets import VideoItem
    from train.engine import Checkpoint

    work, data = runs
    bundle = work / "fused-bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["flow"]["name"] == "flow" and manifest["flow"]["motion"]["kind"] == "stacked_flow"
    assert manifest["flow"]["preprocess"]["color"] == "flow-xy"
    video, events = held_out(data), work / "fused.jsonl"
    r = edge("run", "--model", bundle, "--source", f"file://{video}", "--output", f"json://{events}")
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert [x["frame"] for x in lines] == [FRAMES - 1]
    assert "; flow " in (r.stdout + r.stderr).split("latency ms p50/p95/p99:")[1]  # the flow's cost per frame
    ckpt = Checkpoint.load(bundle / "checkpoint.pt")
    (x, f), _ = clip_dataset([VideoItem(video, 0)], ckpt.clip, ckpt.preprocess, train=False, flow=ckpt.flow,
                             root=video.parent)[0]
    with torch.no_grad():
        offline = dict(zip(ckpt.labels, torch.softmax(ckpt.build()(x[None], f[None]), 1)[0].tolist(), strict=True))
    live = dict(lines[0]["top5"])
    assert max(live, key=live.get) == max(offline, key=offline.get)
    # the two decoders differ by a few 8-bit levels, and the flow follows them
    assert live == pytest.approx({k: offline[k] for k in live}, abs=0.05)


def test_edge_bench_measures_a_fused_bundle(runs):
    work, data = runs
    out = work / "bench.json"
    edge("bench", "--model", work / "fused-bundle", "--data", data, "--rows", "ort:fp32", "--iters", 3, "--json", out)
    row = json.loads(out.read_text())["rows"][0]
    manifest = json.loads((work / "fused-bundle" / "manifest.json").read_text())
    assert row["accuracy"] == pytest.approx(manifest["accuracy"]["fp32"], abs=1e-4)  # both inputs, every clip


def test_a_fused_bundle_is_refused_where_one_input_is_all_there_is(runs):
    work, _ = runs
    r = edge("build", "--bundle", work / "fused-bundle", check=False)
    assert r.returncode == 2 and "two-stream bundle" in r.stderr
    r = edge("export", "--ckpt", work / "fused" / "best.pt", "--out", work / "x", "--int8", check=False)
    assert r.returncode == 2 and "two-stream model; its bundle is fp32 only" in r.stderr


def test_the_student_compresses_like_any_checkpoint(runs, tmp_path):
    work, data = runs
    recipe = tmp_path / "prune.toml"
    recipe.write_text('[[stage]]\nkind = "filter_prune"\ncriterion = "l1"\nratio = 0.5\nfinetune_epochs = 1\n')
    edge("compress", "--ckpt", work / "student" / "best.pt", "--recipe", recipe, "--data", data, "--out",
         tmp_path / "pruned")
    report = json.loads((tmp_path / "pruned" / "report.json").read_text())
    assert [s["kind"] for s in report["stages"]] == ["input", "filter_prune"]
    assert report["stages"][1]["params"] < report["stages"][0]["params"]
