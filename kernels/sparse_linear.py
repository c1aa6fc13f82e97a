"""Running a pruned fully-connected layer from CSR storage (Deep Compression's sparse FC, on our kernel).

``SparseLinear`` holds the weight as a ``CSRMatrix`` and computes ``y = x W^T + b`` with ``csr_spmv``:
the batch becomes the dense right-hand side (W is out x in, X = x^T is in x batch), so a batch of up to 16
clips is one kernel launch. It is an inference module: the weights are frozen (gradients still flow to the
input on the reference path, which is all fine-tuning the layers before it needs).
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.csr import CSRMatrix
from kernels.ops import csr_spmv


class SparseLinear(nn.Module):
    def __init__(self, weight: CSRMatrix, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight_csr = weight
        self.out_features, self.in_features = weight.shape
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, dtype: torch.dtype = torch.float32) -> SparseLinear:
        """Keeps the exact nonzeros of ``linear.weight`` (the pruning mask is the zeros)."""
        np_dtype = {torch.float32: "float32", torch.float16: "float16"}[dtype]
        weight = CSRMatrix.from_dense(linear.weight.detach().cpu().numpy().astype(np_dtype))
        return cls(weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = csr_spmv(self.weight_csr, x.reshape(-1, self.in_features).t()).t()
        y = y.to(x.dtype).reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        w = self.weight_csr
        return f"in_features={self.in_features}, out_features={self.out_features}, density={w.density:.3f}"


def sparsity(linear: nn.Linear) -> float:
    return float((linear.weight == 0).float().mean())


def swap_sparse_linears(model: nn.Module, min_sparsity: float = 0.5) -> list[str]:
    """Replace, in place, every ``nn.Linear`` whose weight is at least ``min_sparsity`` zeros by a
    ``SparseLinear`` on the same device. Returns the names of the swapped layers (report them: below
    ~50% zeros a dense GEMV is faster, see docs/results/kernels.md)."""
    swapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Linear and sparsity(child) >= min_sparsity:
                dtype = child.weight.dtype if child.weight.dtype in (torch.float32, torch.float16) else torch.float32
                setattr(module, child_name, SparseLinear.from_linear(child, dtype).to(child.weight.device))
                swapped.append(f"{name}.{child_name}" if name else child_name)
    return swapped
