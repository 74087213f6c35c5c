"""Loss-value scoring (Moser et al. 2024): a trained proxy SR network's reconstruction error.

The proxy (any registered arch, SRCNN in the paper) is built and loaded with BasicSR's own
builders; each whole sub-image is super-resolved and its error (MSE by default, as in the paper)
over the interior is its difficulty. The interior leaves out the proxy's receptive-field radius
(``receptive_radius`` of our archs), because zero padding darkens a frame of that width and would
rank samples by brightness near the border rather than by difficulty.
"""

from __future__ import annotations

import numpy as np
import torch

from srprune_basicsr.scoring.base import interior, per_sample_error


class LossValueScorer:
    """Proxy network error per sample."""

    name = 'loss_value'
    needs_network = True

    def __init__(self, net: torch.nn.Module, device: torch.device, loss: str = 'mse', border: int | str = 'auto',
                 channels_last: bool = True) -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.loss = loss
        self.border = getattr(net, 'receptive_radius', 0) if border == 'auto' else int(border)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net = self.net.to(memory_format=self.memory_format)
        per_sample_error(torch.zeros(1, 1), torch.zeros(1, 1), loss)  # validate the loss name early

    @torch.inference_mode()
    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        lq = lq.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        pred = self.net(lq).clamp(0, 1)
        gt = gt.to(self.device, non_blocking=True)
        return per_sample_error(interior(pred, self.border), interior(gt, self.border), self.loss)
