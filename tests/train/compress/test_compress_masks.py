"""Magnitude pruning: which weights go, the progressive schedule as it runs, and masks that survive
fine-tuning and a resume (they are rebuilt from the zeros)."""

from __future__ import annotations

import pytest
import torch
from compress_helpers import finetune, tiny_model

from train.compress import masks
from train.compress.schedule import progressive_sparsity


def test_the_smallest_magnitudes_go_first_and_ties_go_to_the_lower_index() -> None:
    w = torch.tensor([[0.1, -3.0, 0.2, 4.0], [-0.05, 1.0, 0.3, 0.0]])
    assert masks.magnitude_mask(w, 0.5).tolist() == [[False, True, False, True], [False, True, True, False]]
    tied = torch.tensor([0.5, -0.5, 0.5, 2.0])
    assert masks.magnitude_mask(tied, 0.5).tolist() == [False, False, True, True]
    assert masks.magnitude_mask(w, 0.0).all()
    assert masks.magnitude_mask(w, 0.99).sum() == 1  # floor(0.99 * 8) = 7 go
    with pytest.raises(ValueError, match="outside"):
        masks.magnitude_mask(w, 1.0)


def test_prune_to_reaches_each_layers_sparsity() -> None:
    model = tiny_model()
    layers = masks.targets(model)
    assert {kind for _, kind in layers.values()} == {"conv", "fc"} and "fc" in layers
    masks.prune_to(model, masks.by_kind(model, conv=0.9, fc=0.5))
    for name, s in masks.sparsity(model).items():
        w = layers[name][0].weight
        want = int(0.9 * w.numel() + 1e-9) if layers[name][1] == "conv" else int(0.5 * w.numel())
        assert round(s * w.numel()) == want, name


def test_masks_survive_fine_tuning_and_a_resume(tmp_path) -> None:
    model = tiny_model()
    masks.prune_to(model, masks.by_kind(model, 0.8, 0.6))
    zeros = {n: m.weight == 0 for n, (m, _) in masks.targets(model).items()}
    tuned = finetune(model, tmp_path / "a", [masks.Masks()])
    for name, (m, _) in masks.targets(tuned).items():
        assert torch.equal(m.weight == 0, zeros[name]), name  # exactly the same pattern
    before = dict(masks.targets(model))["backbone.stages.0.0.conv1.0"][0].weight
    after = dict(masks.targets(tuned))["backbone.stages.0.0.conv1.0"][0].weight
    assert not torch.allclose(before, after)  # the kept weights did train
    unmasked = finetune(model, tmp_path / "b", [])
    assert min(masks.sparsity(unmasked).values()) < 0.01  # without the constraint the zeros fill in


class Recorder:
    """A constraint that writes down the sparsity each epoch trains at (after the constraints before it)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def attach(self, model) -> None:
        pass

    def after_step(self, model) -> None:
        pass

    def before_epoch(self, model, epoch: int) -> None:
        self.seen.append(masks.sparsity(model))


def test_progressive_pruning_grows_the_sparsity_each_epoch(tmp_path) -> None:
    model = tiny_model()
    steps = progressive_sparsity(0.6, 0.2)
    assert steps == [0.2, 0.4, 0.6]
    recorder = Recorder()
    sched = masks.Masks(lambda e: masks.by_kind(model, steps[min(e, 2)], steps[min(e, 2)]))
    tuned = finetune(model, tmp_path, [sched, recorder], epochs=3)
    conv = "backbone.stages.3.1.conv2.0"  # 4096 weights: the floor does not show at this size
    assert [round(s[conv], 3) for s in recorder.seen] == [0.2, 0.4, 0.6]
    assert masks.sparsity(tuned)[conv] == pytest.approx(0.6, abs=1e-3)
