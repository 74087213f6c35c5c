"""Loss-value scoring (Moser et al. 2024): a trained proxy SR network's reconstruction error.

The proxy (any registered arch, SRCNN in the paper) is built and loaded with BasicSR's own
builders; each whole sub-image is super-resolved and its error (MSE by default, as in the paper)
over the interior is its difficulty. The interior leaves out the proxy's receptive-field radius
(``receptive_radius`` of our archs), because zero padding darkens a frame of that width and would
rank samples by brightness near the border rather than by difficulty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srprune_basicsr.formats.atomic import sha256_of
from srprune_basicsr.metrics import checked_border, interior, per_sample_error
from srprune_basicsr.options import trained_options
from srprune_basicsr.scoring.base import Scorer, ScorerContext, register_scorer


def load_proxy(opt: dict) -> tuple[torch.nn.Module, str]:
    """Build ``network_g`` and load ``path:pretrain_network_g``; a mismatch names both."""
    from basicsr.archs import build_network

    net = build_network(dict(opt['network_g']))
    ckpt = (opt.get('path') or {}).get('pretrain_network_g')
    if not ckpt:
        raise ValueError('method loss_value needs path:pretrain_network_g (the trained proxy)')
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f'{ckpt}: no such proxy checkpoint')
    check_trained_scale(Path(ckpt), opt['scale'])
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    param_key = opt['path'].get('param_key_g', 'params')
    if isinstance(state, dict) and param_key in state:
        state = state[param_key]
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=opt['path'].get('strict_load_g', True))
    except RuntimeError as err:
        raise ValueError(f"{ckpt} does not match network_g {opt['network_g']}: {str(err).splitlines()[0]} "
                         f'{str(err).splitlines()[1:3]}') from None
    return net, sha256_of(ckpt)


def check_trained_scale(checkpoint: Path, scale: int) -> None:
    """Refuse a scale other than the proxy's, when its experiment folder holds the option file it was trained with."""
    found = trained_options(checkpoint)
    trained = found[0].get('scale') if found else None
    if trained is not None and int(trained) != int(scale):
        raise ValueError(f'{checkpoint}: this proxy was trained at scale {trained} ({found[1]}), the score '
                         f'options say scale {scale}')


@register_scorer('loss_value')
class LossValueScorer(Scorer):
    """Proxy network error per sample."""

    options = frozenset({'loss', 'border', 'channels_last'})

    def __init__(self, net: torch.nn.Module, device: torch.device, loss: str = 'mse', border: int | str = 'auto',
                 channels_last: bool = True, checkpoint: str | None = None,
                 checkpoint_sha256: str | None = None) -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.loss = loss
        self.border = checked_border(border, getattr(net, 'receptive_radius', 0))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net = self.net.to(memory_format=self.memory_format)
        self.checkpoint, self.checkpoint_sha256 = checkpoint, checkpoint_sha256
        per_sample_error(torch.zeros(1, 1), torch.zeros(1, 1), loss)  # validate the loss name early

    @classmethod
    def from_options(cls, context: ScorerContext) -> LossValueScorer:
        net, sha = load_proxy(context.opt)
        score = context.score
        return cls(net, context.device, score.get('loss', 'mse'), score.get('border', 'auto'),
                   score.get('channels_last', True), context.opt['path']['pretrain_network_g'], sha)

    def provenance(self) -> dict:
        return {'proxy_checkpoint': self.checkpoint, 'proxy_sha256': self.checkpoint_sha256, 'border': self.border}

    def parameters(self, score: dict) -> dict:
        return {'loss': 'mse', **score}

    @torch.inference_mode()
    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        lq = lq.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        pred = self.net(lq).clamp(0, 1)
        gt = gt.to(self.device, non_blocking=True)
        return per_sample_error(interior(pred, self.border), interior(gt, self.border), self.loss)
