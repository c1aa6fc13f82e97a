"""TFDEM, the temporal feature-difference extraction module (Wu & Chiu, 2021, Sec. 3.3-3.4), and the segment
recognizer that carries it next to the main (MSTSM) path.

The path (docs/models.md, "MSTSM / TFDEM", lists where the paper is silent and what we chose):

    frames (N*T, 3, H, W) -> 4 x [3x3 conv, stride 2, BN, ReLU]   (w, 2w, 4w, 8w channels; H/16)
      -> bilinear upsample x2 (H/8) -> f_t - f_{t+1} for the T-1 adjacent pairs    ("current minus next")
      -> 3x3 conv, stride 2, BN, ReLU (8w) -> global average pool -> FC -> mean over the T-1 pairs

It reads the sampled frames, not backbone features: the paper's Eq. 3 gives it its own weights W_TFDEM,
Fig. 6 goes from the sampled frames to the feature maps that are subtracted, and it adds about the same
parameters on ResNet-50 and EfficientNet-B0 (Table 1: +0.3M and +0.26M). No temporal shift mixes frames
before the subtraction, so a clip whose frames are all equal has differences that are exactly zero.

Prediction and training (Sec. 3.4). The deployed score is the sum of the main path's and TFDEM's logits:
the paper counts TFDEM in the model's parameters and GFLOPs (Table 1), and with its loss switched off its
accuracy differs (Table 4), so its scores are part of the prediction. ``forward(x)`` therefore ALWAYS
returns that fused ``(B, num_classes)`` - in train and eval mode, in ONNX export and in the runtime.

The paper trains with L_total = L_main(p_main) + L_TFDEM(p_TFDEM) (Eq. 2-4): each path's cross-entropy on
its own scores, not on the fused ones. So a training loop asks the model for its loss when it has one:

    out = model(x)                                    # model.train(); keeps the two paths' logits
    loss = model.training_loss(y) if hasattr(model, "training_loss") else F.cross_entropy(out, y)

``training_loss(y)`` is Eq. 4 on what the last training-mode forward kept (one call per forward); without
such a forward, or after ``eval()``, it raises. Nothing is kept in eval mode, so the export path carries no
hidden state.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from train.models.recognizer import SegmentRecognizer
from train.models.resnet import conv_bn


class TFDEM(nn.Module):
    """Frames (B, T, 3, H, W) -> TFDEM class scores (B, num_classes), from the T-1 adjacent differences."""

    def __init__(self, num_classes: int, num_segments: int, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        if num_segments < 2:
            raise ValueError(f"TFDEM subtracts adjacent frames: it needs num_segments >= 2, got {num_segments}")
        chans = [3] + [width * 2**i for i in range(depth)]
        # "the stride of the convolutional layers before subtraction was set to 2" (Sec. 3.3)
        self.encode = nn.Sequential(*(conv_bn(a, b, 3, 2) for a, b in pairwise(chans)))
        # "the bilinear upsample layer was inserted before feature subtraction"
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = conv_bn(chans[-1], chans[-1], 3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chans[-1], num_classes)
        self.out_features = chans[-1]

    def differences(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T-1, C, h, w): upsampled features of frame t minus those of frame t+1."""
        b, t = x.shape[0], x.shape[1]
        f = self.upsample(self.encode(x.reshape(b * t, *x.shape[2:])))
        f = f.reshape(b, t, *f.shape[1:])
        return f[:, :-1] - f[:, 1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.differences(x)
        b, pairs = d.shape[0], d.shape[1]
        feats = torch.flatten(self.pool(self.head(d.reshape(b * pairs, *d.shape[2:]))), 1)
        return self.fc(feats).reshape(b, pairs, -1).mean(dim=1)


class TFDEMRecognizer(SegmentRecognizer):
    """A segment recognizer (the main path) plus TFDEM; ``forward`` returns main + TFDEM logits, see the
    module docstring for ``training_loss``."""

    def __init__(self, backbone: nn.Module, num_classes: int, num_segments: int, dropout: float = 0.0,
                 tfdem_width: int = 16) -> None:
        super().__init__(backbone, num_classes, num_segments, dropout)
        self.tfdem = TFDEM(num_classes, num_segments, tfdem_width)
        self._stash: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = super().forward(x)
        tfdem = self.tfdem(x)
        out = main + tfdem
        self._stash = (main, tfdem) if self.training else None
        return out

    def train(self, mode: bool = True) -> TFDEMRecognizer:
        self._stash = None  # a switch of mode drops what the last forward left (and its autograd graph)
        return super().train(mode)

    def training_loss(self, targets: torch.Tensor) -> torch.Tensor:
        """The paper's L_total (Eq. 4), CE(main) + CE(tfdem), for the last training-mode forward. One call
        per forward."""
        if self._stash is None:
            raise RuntimeError("training_loss needs a training-mode forward first: model.train(); out = model(x); "
                               "then model.training_loss(y) (once per forward)")
        main, tfdem = self._stash
        self._stash = None
        return F.cross_entropy(main, targets) + F.cross_entropy(tfdem, targets)
