"""SRDistributionDistillModel: instance-level distribution matching with teacher labels (IDC-style), a BasicSR model.

Run with ``srprune train -opt options/distill/distill_distribution_x2.yml``. Each source image
(the grouping of ``distill.grouping``) gets ``n_i`` synthetic LR patches (``distill.allocation``:
``ratio`` of its sub-images), initialised from a seeded choice of its real LR sub-images. A
trained SR network (``network_teacher``, ``distill.teacher``) is the fixed feature extractor: at
each iteration, for every source image the loader deals, its real LR sub-images and its synthetic
patches pass through the teacher under the same random flip/rotation, and the distance of
``distill.distribution`` (mean embeddings plus random local Fourier features at each tapped level)
is backpropagated into the synthetic patches; one optimizer step follows. There is no inner
training loop: the cost per source is a few teacher passes, not a network's training.

At the end the HR label of each patch is the teacher's output on the stored (uint8) patch, or,
with ``labels: bicubic``, that output projected onto the HR images whose MATLAB-bicubic
downscale is the patch (iterative back-projection), so the pairs follow the bicubic degradation
like the real data. The set is written as PNG folders and LMDBs (``distill.export``), names
``<source>_syn<k>``; ``distilled.json`` traces every patch to its source image and the real
sub-image it started from.

Why a sibling of SRDistillModel and not a branch of it: the two learn different things (HR
images vs LR patches), use different networks (a fresh random net per iteration vs one fixed
teacher) and make their labels differently; one class would carry two of every method. They share
the data reading, the grouping, the export and the ``distill:`` block.

Under ``torchrun`` every rank holds the whole synthetic set and the teacher; BasicSR's sampler deals
each rank its share of the source images at each iteration, and the gradients are summed across
ranks before the step (as DDP does), so the ranks stay identical and a run resumes on any world size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.distill.allocation import patch_counts
from srprune_basicsr.distill.augment import Draw, transform
from srprune_basicsr.distill.distribution import FourierDraw, distribution_distance
from srprune_basicsr.distill.export import contact_sheet, to_uint8, write_distilled
from srprune_basicsr.distill.grouping import group_keys
from srprune_basicsr.distill.options import distill_options
from srprune_basicsr.distill.real_images import RealImages
from srprune_basicsr.distill.teacher import FeatureTap, default_layers, load_teacher
from srprune_basicsr.models.sr_distill_model import SyntheticSetModel

CHUNK = 256  # patches per teacher pass when labelling or making LR


class SyntheticPatches(nn.Module):
    """The learned LR patches of every source, one tensor [patches, 3, h, w]; rows of source i are
    ``offsets[i]:offsets[i + 1]``."""

    def __init__(self, data: torch.Tensor) -> None:
        super().__init__()
        self.data = nn.Parameter(data)


def bicubic_consistent(hr: torch.Tensor, lr: torch.Tensor, scale: int, steps: int) -> torch.Tensor:
    """``hr`` moved towards the HR images in [0, 1] whose MATLAB-bicubic downscale is ``lr``.

    Iterative back-projection, clamped to [0, 1] at each step (alternating projections): where an
    LR patch has detail no image in [0, 1] can downscale to, a small residual remains (recorded).
    """
    for _ in range(steps):
        hr = (hr + imresize_tensor(lr - imresize_tensor(hr, 1 / scale), scale)).clamp(0, 1)
    return hr


@MODEL_REGISTRY.register()
class SRDistributionDistillModel(SyntheticSetModel):
    """Distribution-matching distillation of a paired SR training set (see the module docstring)."""

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.options = distill_options(opt.get('distill'), opt, 'distribution')
        self.scale, self.seed = int(opt['scale']), int(opt.get('manual_seed') or 0)
        train = opt['datasets']['train']
        self.real = RealImages(train['dataroot_gt'], train.get('io_backend', {}).get('type', 'disk'), self.device,
                               self.options.real_limit_gb, progress=get_dist_info()[0] == 0)
        self._check_sizes()
        groups = group_keys(self.real.keys, train.get('groups'))
        self.group_names = list(groups)
        self.group_members = [np.asarray(v) for v in groups.values()]
        self.counts = patch_counts([len(m) for m in self.group_members], self.options.ratio,
                                   self.options.min_per_source, self.seed)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(int)
        self.teacher = load_teacher(opt, self.device)
        self.layers = list(self.options.layers or default_layers(self.teacher))
        self.tap = FeatureTap(self.teacher, self.layers)
        self.real_lr = self._real_lr()
        self.init_indices = self._initial_choice()
        self.syn = SyntheticPatches(self.real_lr[torch.as_tensor(self.init_indices, device=self.device)].float()
                                    .div(255)).to(self.device)
        self._setup_optimizers()
        self.log_dict: OrderedDict = OrderedDict()
        self.batch_groups: list[int] = []
        if not opt['path'].get('resume_state'):
            self.write_sheet('contact_start.png', 'start: synthetic LR patches (initialised from real ones)')
        get_root_logger().info(
            f'SRDistributionDistillModel: {int(self.counts.sum())} synthetic LR patches of {self.real_lr.shape[-1]} px '
            f'for {len(self.group_names)} source images ({int((self.counts == 0).sum())} without a patch) from '
            f'{len(self.real.keys)} real sub-images (ratio {self.options.ratio:g}); teacher '
            f"{opt['network_teacher']['type']} at layers {self.layers}; labels {self.options.labels}")

    # ----------------------------------------------------------------- set-up
    def _check_sizes(self) -> None:
        h, w = self.real.size
        if h % self.scale or w % self.scale:
            raise ValueError(f"{self.opt['datasets']['train']['dataroot_gt']}: sub-images of {h}x{w} px are not "
                             f'divisible by the scale {self.scale}')
        if h != w and self.options.rotations:
            raise ValueError(f'distill:rotations needs square sub-images (these are {h}x{w}); set it to false')

    def _real_lr(self) -> torch.Tensor:
        """The real LR sub-images as uint8 [N, 3, h, w]: MATLAB bicubic of the GT, as ``prepare`` makes them."""
        chunks = []
        for start in range(0, len(self.real.keys), CHUNK):
            hr = self.real.batch(np.arange(start, min(start + CHUNK, len(self.real.keys))))
            chunks.append(imresize_tensor(hr, 1 / self.scale).clamp(0, 1).mul(255).round().byte())
        return torch.cat(chunks)

    def _initial_choice(self) -> np.ndarray:
        """Which real sub-image each synthetic patch starts from: a seeded choice without repeats per source."""
        rng = np.random.default_rng([self.seed, 0])
        picks = [rng.choice(m, n, replace=False) for m, n in zip(self.group_members, self.counts, strict=True)]
        return np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64)

    def _setup_optimizers(self) -> None:
        train = self.opt['train']
        optim = dict(train.get('optim_syn') or {'type': 'Adam', 'lr': 0.01})
        optim_type = optim.pop('type', 'Adam')
        self.optimizer_syn = getattr(torch.optim, optim_type)([self.syn.data], **optim)
        self.optimizers.append(self.optimizer_syn)
        if train.get('scheduler'):
            self.setup_schedulers()

    # ----------------------------------------------------------------- one iteration
    def feed_data(self, data: dict) -> None:
        self.batch_groups = [int(g) for g in data['group'] if self.counts[int(g)] > 0]

    def _draw_real(self, group: int, rng: np.random.Generator) -> tuple[np.ndarray, Draw]:
        members = self.group_members[group]
        picks = members if len(members) <= self.options.real_batch else rng.choice(members, self.options.real_batch,
                                                                                   replace=False)
        return np.sort(picks), Draw.sample(rng, self.options.flips, self.options.rotations)

    def match_groups(self, groups: Sequence[int], rng: np.random.Generator,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances of ``groups`` in one teacher pass each for real and synthetic; backpropagated into the set."""
        draws = [self._draw_real(g, rng) for g in groups]
        real = torch.cat([transform(self.real_lr[torch.as_tensor(p, device=self.device)].float().div(255), d)
                          for p, d in draws])
        syn = torch.cat([transform(self.syn.data[self.offsets[g]:self.offsets[g + 1]], d)
                         for g, (_, d) in zip(groups, draws, strict=True)])
        with torch.no_grad():
            real_features = self.tap(self.teacher, real)
        syn_features = self.tap(self.teacher, syn)
        real_sizes = [len(p) for p, _ in draws]
        syn_sizes = [int(self.counts[g]) for g in groups]
        real_parts = list(zip(*(f.split(real_sizes) for f in real_features), strict=True))
        syn_parts = list(zip(*(f.split(syn_sizes) for f in syn_features), strict=True))
        options = self.options
        fourier = FourierDraw(options.fourier_window, options.fourier_windows, options.fourier_frequencies)
        means, fouriers = [], []
        for r, s in zip(real_parts, syn_parts, strict=True):
            m, f = distribution_distance(r, s, fourier, generator, options.weight_mean, options.weight_fourier)
            means.append(m)
            fouriers.append(f)
        means, fouriers = torch.stack(means), torch.stack(fouriers)
        (means + fouriers).sum().backward(inputs=[self.syn.data])
        return means.detach(), fouriers.detach()

    def _reduce_gradients(self) -> None:
        """Sum the gradients of every rank's sources (each rank matched a different share), as DDP would."""
        if self.opt.get('dist'):
            if self.syn.data.grad is None:  # this rank's share had no patch to match
                self.syn.data.grad = torch.zeros_like(self.syn.data)
            torch.distributed.all_reduce(self.syn.data.grad)

    def optimize_parameters(self, current_iter: int) -> None:
        rank = get_dist_info()[0]
        rng = np.random.default_rng([self.seed, current_iter, rank])
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + current_iter * 1_009 + rank)
        self.optimizer_syn.zero_grad(set_to_none=False)
        size, means, fouriers = self.options.group_batch, [], []
        for start in range(0, len(self.batch_groups), size):
            m, f = self.match_groups(self.batch_groups[start:start + size], rng, generator)
            means.append(m)
            fouriers.append(f)
        self._reduce_gradients()
        self.optimizer_syn.step()
        with torch.no_grad():
            self.syn.data.clamp_(0, 1)  # the patches stay images
        count = max(1, len(self.batch_groups))
        self.log_dict = OrderedDict(l_mean=float(torch.cat(means).sum()) / count if means else 0.0,
                                    l_fourier=float(torch.cat(fouriers).sum()) / count if fouriers else 0.0)

    # ----------------------------------------------------------------- checkpoints and output
    def save(self, epoch: int, current_iter: int) -> None:
        if get_dist_info()[0] == 0:  # every rank holds the same set
            self.save_network(self.syn, 'net_syn', current_iter)
            # BasicSR's resume points path:pretrain_network_teacher at models/net_teacher_<iter>.pth: the same
            # frozen weights, kept with the checkpoint so a resumed run cannot pick up a changed teacher
            self.save_network(self.teacher, 'net_teacher', current_iter)
            self.save_training_state(epoch, current_iter)
            if current_iter == -1:
                self.export()

    @torch.no_grad()
    def labelled_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR as stored, HR labels): the uint8-rounded patches and the teacher's (or bicubic-consistent) HR."""
        lr = self.syn.data.detach().clamp(0, 1).mul(255).round().div(255)
        labels = []
        for start in range(0, len(lr), CHUNK):
            part = lr[start:start + CHUNK]
            hr = self.teacher(part).clamp(0, 1)
            if self.options.labels == 'bicubic':
                hr = bicubic_consistent(hr, part, self.scale, self.options.projection_steps)
            labels.append(hr)
        return lr, torch.cat(labels) if labels else lr.new_zeros(0, 3, *(s * self.scale for s in lr.shape[-2:]))

    def _names(self) -> list[str]:
        return [f'{g}_syn{k:02d}' for g, n in zip(self.group_names, self.counts, strict=True) for k in range(n)]

    def write_sheet(self, name: str, title: str, labels: torch.Tensor | None = None) -> None:
        """Real LR sub-images beside the synthetic patches (or their HR labels) of the first few sources."""
        if get_dist_info()[0] != 0:
            return
        rows = []
        shown = [g for g in range(len(self.group_names)) if self.counts[g]][:self.options.sheet_groups]
        for g in shown:
            real = list(self.real_lr[torch.as_tensor(self.group_members[g][:4], device=self.device)]
                        .permute(0, 2, 3, 1).cpu().numpy())
            rows_of = slice(self.offsets[g], self.offsets[g + 1])
            syn = to_uint8(labels[rows_of] if labels is not None else self.syn.data[rows_of])
            rows.append((self.group_names[g], real, syn[:6]))
        if rows:
            contact_sheet(Path(self.opt['path']['visualization']) / name, rows,
                          title=f"{self.opt['name']}: {title}")

    def export(self) -> Path:
        """The distilled pairs as PNG folders and LMDBs in ``experiments/<name>/distilled``."""
        out = Path(self.opt['path']['experiments_root']) / 'distilled'
        lr, hr = self.labelled_pairs()
        names = self._names()
        gap = (imresize_tensor(hr, 1 / self.scale) - lr).abs() * 255 if len(lr) else torch.zeros(1)
        residual, residual_mean = float(gap.max()), float(gap.mean())
        patches = [{'name': n, 'source': self.group_names[g], 'init_key': self.real.keys[int(i)]}
                   for n, g, i in zip(names, np.repeat(np.arange(len(self.counts)), self.counts), self.init_indices,
                                      strict=True)]
        record = write_distilled(out, names, to_uint8(hr), [], {
            'objective': 'distribution', 'labels': self.options.labels,
            'teacher': str(self.opt['path']['pretrain_network_teacher']), 'layers': self.layers,
            'ratio': self.options.ratio, 'min_per_source': self.options.min_per_source,
            'sources': len(self.group_names), 'sources_without_patch': int((self.counts == 0).sum()),
            'source': str(self.opt['datasets']['train']['dataroot_gt']), 'source_images': len(self.real.keys),
            'source_bytes': self.real.stored_bytes, 'image_ratio': len(names) / len(self.real.keys),
            'bicubic_residual_max': round(residual, 3), 'bicubic_residual_mean': round(residual_mean, 3),
            'patches': patches},
            inputs=[self.opt['datasets']['train']['dataroot_gt']], lr_images={self.scale: to_uint8(lr)})
        self.write_sheet('contact_end.png', f'end: HR labels ({self.options.labels})', labels=hr)
        get_root_logger().info(f"SRDistributionDistillModel: {len(names)} synthetic pairs -> {out} "
                               f"({record['image_ratio']:.2%} of the source's images; HR labels "
                               f'{self.options.labels}; |bicubic(HR) - LR| mean {residual_mean:.2f}, '
                               f'max {residual:.2f} of 255)')
        return out
