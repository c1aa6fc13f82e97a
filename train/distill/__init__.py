"""Motion without optical flow at run time (../shared/papers/dual-action-stream-distillation.txt): the
Dual-action Stream's losses (``losses``), an RGB student trained against a frozen flow teacher
(``student``), and the attention fusion of two frozen streams (``fusion``). docs/distillation.md."""

from train.distill.losses import (
    LOSSES,
    FeatureTap,
    as_block,
    distill_loss,
    freeze,
    gram,
    gram_loss,
    mae_loss,
    mars_loss,
)

__all__ = ["LOSSES", "FeatureTap", "as_block", "distill_loss", "freeze", "gram", "gram_loss", "mae_loss", "mars_loss"]
