"""The model's head: the FIR control filter each block plays, and the loss."""

from __future__ import annotations

import torch
from torch import nn

# Where the weight of the bank's errors in the mixing logits starts (it is learned): softmax weights ∝
# error power^−2. The switching suite's bank, picked by its errors alone on 10-ms blocks from the newest
# 10 ms (median segment NR, 1 / 5 ms latency): weights ∝ power^−1 20.5 / 18.4 dB, ^−2 20.6 / 18.5, ^−4
# 20.1 / 18.7, the single best filter switched at the block edge 21.6 / 16.4 (its worst segment −1.1 dB at
# 5 ms). Exploratory runs with the fitted bank, not a committed command.
BANK_ERROR_SHARPNESS = 2.0



class FIRFilterHead(nn.Module):
    """The control filter of each block: ``h_b = shared + basis @ (projection @ features_b)``.

    ``shared`` (``K`` taps) serves every block; the encoder steers ``rank`` filters of ``basis`` on top
    of it through ``projection``. ``shared`` and ``basis`` start at zero, so an untrained model outputs
    silence; a low rank keeps long filters cheap (one convolution per basis filter).
    """

    def __init__(self, hidden_size: int, filter_taps: int, rank: int, mixing: bool = False, bank_errors: bool = False):
        super().__init__()
        self.shared = nn.Parameter(torch.zeros(filter_taps))
        self.basis = nn.Parameter(torch.zeros(filter_taps, rank))
        self.projection = nn.Parameter(torch.zeros(rank, hidden_size))
        if bank_errors:
            self.error_sharpness = nn.Parameter(torch.tensor(BANK_ERROR_SHARPNESS))
        self.mixing = mixing

    @property
    def bank(self) -> torch.Tensor:
        """The filters the gains mix, ``shared + basisⱼ``, shape ``(rank, filter_taps)`` (with ``mixing``, the bank)."""
        return self.shared[None] + self.basis.T

    def gains(self, features: torch.Tensor, error_logits: torch.Tensor | None = None) -> torch.Tensor:
        """How much of each basis filter to add: ``(..., hidden)`` → ``(..., rank)``.

        Free multiples, or with ``mixing`` (a filter bank, basis ``bank[j] − shared``) softmax weights
        that sum to one, so the block's filter is a convex mix ``Σⱼ wⱼ·bank[j]``. ``error_logits``
        (``signal_path.bank_error_logits``, shape ``(..., rank)``), the bank's own recent errors,
        join the encoder's logits, scaled by the learned ``error_sharpness``.
        """
        logits = features @ self.projection.T
        if error_logits is not None:
            logits = logits + self.error_sharpness * error_logits.to(logits.dtype)
        return torch.softmax(logits, -1) if self.mixing else logits

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The filter taps themselves: ``(..., hidden)`` → ``(..., filter_taps)``."""
        return self.shared + self.gains(features) @ self.basis.T


def normalised_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``Σ(prediction − target)² / Σtarget²``; −10·log10 of it is the NR in dB."""
    error = (prediction.float() - target.float()).pow(2).sum(-1)
    power = target.float().pow(2).sum(-1).clamp_min(1e-12)
    return (error / power).mean()
