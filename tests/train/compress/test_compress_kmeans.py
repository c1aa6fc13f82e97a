"""k-means weight sharing: at most 2^bits values per layer (zero included), linear initialisation, the
pruned zeros kept, and centroid fine-tuning with per-cluster summed gradients."""

from __future__ import annotations

import numpy as np
import torch
from compress_helpers import finetune, tiny_model
from torch import nn

from train.compress import kmeans, masks


def test_two_clear_groups_and_the_zeros_get_three_codes() -> None:
    w = np.array([[0.0, 1.0, 1.1, 0.0], [-2.0, -2.2, 0.9, -1.9]], dtype=np.float32)
    codebook, codes = kmeans.cluster(w, bits=2)  # 3 centroids for the non-zeros, code 0 for zero
    assert codebook[0] == 0 and codebook.size == 3  # the linear init's middle centroid (-0.6) is left empty
    assert codebook[1:].tolist() == [np.float32(-2.0333333), np.float32(1.0)]
    assert codes.tolist() == [[0, 2, 2, 0], [1, 1, 2, 1]]
    assert np.allclose(codebook[codes], [[0, 1, 1, 0], [-2.0333, -2.0333, 1, -2.0333]], atol=1e-4)


def test_an_all_zero_layer_has_only_the_zero_code() -> None:
    codebook, codes = kmeans.cluster(np.zeros((2, 3)), bits=4)
    assert codebook.tolist() == [0.0] and not codes.any()


def test_every_layer_ends_with_at_most_2_to_the_bits_values_and_its_zeros() -> None:
    model = tiny_model()
    masks.prune_to(model, masks.by_kind(model, 0.5, 0.5))
    original = {n: m.weight.detach().clone() for n, (m, _) in masks.targets(model).items()}
    sizes = kmeans.share(model, conv_bits=4, fc_bits=2)
    for name, (m, kind) in masks.targets(model).items():
        w0 = original[name]
        assert torch.unique(m.weight).numel() == sizes[name] <= (16 if kind == "conv" else 4), name
        assert torch.equal(m.weight == 0, w0 == 0), name
        # Lloyd's iterations improve on their linear initialisation: a grid of 15 values, nearest one each
        nz = w0[w0 != 0]
        grid = torch.linspace(nz.min().item(), nz.max().item(), 15)
        on_grid = grid[(nz[:, None] - grid).abs().argmin(1)]
        assert ((m.weight[w0 != 0] - nz) ** 2).mean() < ((on_grid - nz) ** 2).mean() or kind == "fc", name


def test_a_cluster_gets_the_sum_of_its_members_gradients() -> None:
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.0, 0.5], [-1.0, 0.5, -1.0]]))
    shared = kmeans.SharedWeights()
    shared.attach(layer)
    (layer.weight * torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    # clusters: 0.5 -> {1, 3, 5} = 9, 0 (pruned) -> 0, -1 -> {4, 6} = 10
    assert layer.weight.grad.tolist() == [[9.0, 0.0, 9.0], [10.0, 9.0, 10.0]]


def test_fine_tuning_moves_the_centroids_but_keeps_the_clusters(tmp_path) -> None:
    model = tiny_model()
    masks.prune_to(model, masks.by_kind(model, 0.5, 0.5))
    kmeans.share(model, conv_bits=3, fc_bits=2)
    layers = masks.targets(model)
    codes = {n: torch.unique(m.weight, return_inverse=True)[1] for n, (m, _) in layers.items()}
    tuned = finetune(model, tmp_path, [kmeans.SharedWeights(), masks.Masks()])
    moved = 0
    for name, (m, _) in masks.targets(tuned).items():
        values, inverse = torch.unique(m.weight, return_inverse=True)
        assert torch.equal(inverse, codes[name]), name  # same members, same order of values
        assert torch.equal(m.weight == 0, layers[name][0].weight == 0), name
        moved += not torch.equal(values, torch.unique(layers[name][0].weight))
    assert moved == len(layers)
