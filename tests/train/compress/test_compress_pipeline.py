"""The stage runner in process, on random clips (fast, so mutation runs can cover it): what each stage
leaves in its checkpoint, and what later fine-tunes keep (zeros, shared values) while INT8 QAT trains."""

from __future__ import annotations

import json

import torch
from compress_helpers import CONFIG, checkpoint, clips, tiny_model
from torch.utils.flop_counter import FlopCounterMode

from train.compress import masks
from train.compress.pipeline import Data, Runner
from train.compress.recipe import parse_recipe
from train.engine import Checkpoint

RECIPE = """
[[stage]]
kind = "filter_prune"
criterion = "l1"
ratio = 0.5
stream_ratio = 0.5

[[stage]]
kind = "magnitude_prune"
sparsity = 0.5
step = 0.25
finetune_epochs = 2

[[stage]]
kind = "kmeans"
conv_bits = 3
fc_bits = 2
finetune_epochs = 1

[[stage]]
kind = "store"

[[stage]]
kind = "int8"
finetune_epochs = 1
"""


def test_each_stage_keeps_what_the_earlier_ones_made_true(tmp_path):
    seen = []

    def measure(ckpt, sdir, stage):  # no exporter here: torch's own MAC count stands in for the ONNX one
        seen.append((None if stage is None else stage.kind, sorted(p.name for p in sdir.iterdir())))
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            ckpt.build()(clips(1)[0][0][None])
        return {"gflops": counter.get_total_flops() / 2e9, "size_mb": 0.0, "latency_ms_p50": 0.0}

    start = checkpoint(tiny_model())
    runner = Runner(parse_recipe(RECIPE), start, Data(clips(8, seed=1), clips(6, seed=2)), tmp_path, measure,
                    progress=False)
    rows = runner.run()
    assert [r["kind"] for r in rows] == ["input", "filter_prune", "magnitude_prune", "kmeans", "store", "int8"]
    assert rows[1]["params"] < rows[0]["params"] and rows[1]["gflops"] < rows[0]["gflops"]
    assert ("store", ["checkpoint.pt", "store.json"]) in seen  # measured after the store wrote its report
    final = Checkpoint.load(tmp_path / "checkpoint.pt")
    assert final.config["inner_widths"] == [2, 2, 4, 4, 8, 8, 16, 16] and set(CONFIG) < set(final.config)
    assert final.config["stream_widths"] == [2, 2, 4, 8, 16]  # each residual stream halved, tied ones alike
    assert "qat" in final.train_state and "optimizer" not in final.train_state
    model = final.build()
    stored = Checkpoint.load(tmp_path / "model.edgez")
    for name, (m, kind) in masks.targets(model).items():
        w = m.weight
        assert (w == 0).float().mean().item() >= 0.49, name  # the masks survived kmeans and QAT fine-tunes
        assert torch.unique(w).numel() <= (8 if kind == "conv" else 4), name  # so did the shared values
        assert torch.equal(w == 0, stored.state_dict[f"{name}.weight"] == 0), name
    pruned = json.loads((tmp_path / "stages" / "1-filter_prune" / "pruned.json").read_text())
    assert pruned[0] == {"block": "backbone.stages.0.0", "before": 4, "after": 2}
    assert pruned[8:] == [{"stream": "backbone.stem", "before": 4, "after": 2},
                          {"stream": "backbone.stages.1", "before": 8, "after": 4},
                          {"stream": "backbone.stages.2", "before": 16, "after": 8},
                          {"stream": "backbone.stages.3", "before": 32, "after": 16}]
