"""SRDistillModel: dataset distillation for SR by gradient matching (Dietz et al. 2025), a BasicSR model type.

Run with ``srprune train -opt options/distill/<name>.yml``. One BasicSR iteration is one outer
iteration of Dataset Condensation: a freshly initialised matching network (``network_match``, any
registered arch, built for the iteration's scale); for each group of the batch (the loader of
``DistillGroupDataset`` deals groups = source images), the SR loss gradient on a real batch of
the group's sub-images is matched by the gradient on the group's synthetic images:
distance = sum over layers of (1 - cos) per output channel (``distill.matching``), backpropagated
per group into the synthetic data only (constant memory), then one optimizer step on the
synthetic data. With ``distill:group_batch`` G > 1, G groups are matched in one batched pass
(``torch.func.vmap`` over per-group gradients): the same result within float tolerance, with
fewer and larger kernel launches, and memory that grows with G, not with the number of groups.
Optionally ``outer_loop`` rounds with ``inner_steps`` of training the matching network on the
synthetic set between them.

Only the HR synthetic image is a parameter (``space: pixel``) or the latent code a frozen,
optionally fine-tuned generator decodes into it (``space: latent``); its LR is the differentiable
MATLAB bicubic of it, so one set serves x2, x3 and x4 (``scales``: matched round-robin). Real and
synthetic pairs get the same random flip/rotation/crop draw. Every random choice of iteration t
comes from generators seeded with (manual_seed, t), so a resumed run reproduces an uninterrupted
one. Checkpoints save the synthetic set as ``models/net_syn_<iter>.pth`` (its optimizer state goes
into BasicSR's training state); the end of training writes ``distilled/`` (PNG + LMDBs, see
``distill.export``) and contact sheets of real vs synthetic images.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.distill.augment import Draw, augment_pair
from srprune_basicsr.distill.export import contact_sheet, to_uint8, write_distilled
from srprune_basicsr.distill.grouping import group_keys
from srprune_basicsr.distill.matching import gradient_distance, gradient_distances
from srprune_basicsr.distill.options import distill_options
from srprune_basicsr.distill.real_images import RealImages


class SyntheticSet(nn.Module):
    """The distilled data: HR images (pixel space) or latent codes decoded by ``prior`` (latent space)."""

    def __init__(self, data: torch.Tensor, prior: nn.Module | None = None) -> None:
        super().__init__()
        self.data = nn.Parameter(data)  # [groups, images per group, ...]
        self.prior = prior

    def images(self, group: int | None = None) -> torch.Tensor:
        """[images per group, 3, S, S] of one group, or [all, 3, S, S]."""
        x = self.data[group] if group is not None else self.data.flatten(0, 1)
        return x if self.prior is None else self.prior.decode(x)

    def images_of(self, groups: Sequence[int]) -> torch.Tensor:
        """[len(groups), images per group, 3, S, S]: several groups decoded in one pass."""
        x = self.data[list(groups)]
        if self.prior is None:
            return x
        decoded = self.prior.decode(x.flatten(0, 1))
        return decoded.reshape(*x.shape[:2], *decoded.shape[1:])


class SyntheticSetModel(BaseModel):
    """What every distillation model shares: the synthetic set ``self.syn`` saved as ``models/net_syn_<iter>.pth``
    and loaded back on resume, and no validation (the set is judged by training a target on it)."""

    syn: nn.Module

    def resume_training(self, resume_state: dict) -> None:
        path = Path(self.opt['path']['models']) / f"net_syn_{resume_state['iter']}.pth"
        if not path.is_file():
            raise FileNotFoundError(f'{path}: the synthetic set of the checkpoint to resume is missing')
        self.load_network(self.syn, str(path), strict=True, param_key='params')
        super().resume_training(resume_state)

    def validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool = False) -> None:
        get_root_logger().warning(f'{type(self).__name__} has no validation: train a target model on the '
                                  'distilled set')


@MODEL_REGISTRY.register()
class SRDistillModel(SyntheticSetModel):
    """Gradient-matching distillation of a paired SR training set (see the module docstring)."""

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        if opt.get('dist'):
            raise ValueError('SRDistillModel runs in one process; start it without --launcher pytorch')
        self.options = distill_options(opt.get('distill'), opt)
        self.seed = int(opt.get('manual_seed') or 0)
        train = opt['datasets']['train']
        backend = train.get('io_backend', {}).get('type', 'disk')
        self.real = RealImages(train['dataroot_gt'], backend, self.device, self.options.real_limit_gb)
        groups = group_keys(self.real.keys, train.get('groups'))
        self.group_names = list(groups)
        self.group_members = [np.asarray(v) for v in groups.values()]
        self._check_sizes()
        self.resuming = bool(opt['path'].get('resume_state'))
        self.syn = SyntheticSet(*self._initial_data()).to(self.device)
        self._setup_optimizers()
        self.log_dict: OrderedDict = OrderedDict()
        self.batch_groups: list[int] = []
        if not self.resuming:
            self.write_sheet('contact_start.png', 'start of distillation')
        get_root_logger().info(
            f"SRDistillModel: {self.options.space} space, {len(self.group_names)} groups x "
            f"{self.options.images_per_group} synthetic image(s) of {self.size} px from {len(self.real.keys)} real "
            f"sub-images; scales {list(self.options.scales)}, crop {self.crop}, real batch {self.options.real_batch}")

    # ----------------------------------------------------------------- set-up
    def _check_sizes(self) -> None:
        options, name = self.options, self.opt['datasets']['train'].get('name', 'train')
        for group, members in zip(self.group_names, self.group_members, strict=True):
            if len(members) < options.images_per_group:
                raise ValueError(f"distill:images_per_group {options.images_per_group} is larger than group "
                                 f'{group!r} of datasets:{name} ({len(members)} sub-images)')
        real = min(self.real.size)
        self.size = int(options.syn_size or real)
        step = math.lcm(*options.scales)
        self.crop = int(options.crop or self.size)
        if self.size > real or self.size % step:
            raise ValueError(f'distill:syn_size {self.size} must be at most the sub-image size {real} and a '
                             f'multiple of {step} (the scales {list(options.scales)})')
        if self.crop > self.size or self.crop % step:
            raise ValueError(f'distill:crop {self.crop} must be at most syn_size {self.size} and a multiple of {step}')

    def _real_init(self) -> torch.Tensor:
        """A seeded choice of real sub-images of each group, centre-cropped to the synthetic size."""
        rng = np.random.default_rng([self.seed, 0])
        picks = [rng.choice(m, self.options.images_per_group, replace=False) for m in self.group_members]
        images = self.real.batch(np.concatenate(picks))
        top = (images.shape[-1] - self.size) // 2
        images = images[..., top:top + self.size, top:top + self.size]
        return images.reshape(len(picks), self.options.images_per_group, *images.shape[1:])

    def _initial_data(self) -> tuple[torch.Tensor, nn.Module | None]:
        generator = torch.Generator().manual_seed(self.seed)
        shape = (len(self.group_names), self.options.images_per_group)
        if self.options.space == 'pixel':
            if self.options.init == 'real':
                return self._real_init(), None
            return torch.rand(*shape, 3, self.size, self.size, generator=generator), None
        prior = self._load_prior()
        with torch.no_grad():
            if self.options.init == 'real':
                latent = prior.encode(self._real_init().flatten(0, 1))
                return latent.reshape(*shape, *latent.shape[1:]), prior
            latent = prior.encode(torch.zeros(1, 3, self.size, self.size, device=self.device)).shape[1:]
            return torch.randn(*shape, *latent, generator=generator).to(self.device), prior

    def _load_prior(self) -> nn.Module:
        prior = build_network(dict(self.opt['network_prior'])).to(self.device)
        for method in ('decode',) + (('encode',) if self.options.init == 'real' else ()):
            if not callable(getattr(prior, method, None)):
                raise ValueError(f"network_prior {self.opt['network_prior']['type']} has no {method}() method")
        path = self.opt['path'].get('pretrain_network_prior')
        if not self.resuming:  # on resume the prior comes back inside net_syn
            if not path or not Path(path).is_file():
                raise FileNotFoundError(f'path:pretrain_network_prior {path!r}: no such checkpoint (train the prior '
                                        'first, e.g. options/distill/train_prior_ae.yml)')
            self.load_network(prior, path, self.opt['path'].get('strict_load_prior', True),
                              self.opt['path'].get('param_key_prior', 'params'))
        prior.eval()
        prior.requires_grad_(bool(self.options.finetune_prior))
        return prior

    def _setup_optimizers(self) -> None:
        train = self.opt['train']
        optim = dict(train['optim_syn'])
        optim_type = optim.pop('type', 'SGD')
        groups = [{'params': [self.syn.data]}]
        if self.syn.prior is not None and self.options.finetune_prior:
            prior_optim = dict(train.get('optim_prior') or {'lr': optim['lr'] * 0.01})
            groups.append({'params': list(self.syn.prior.parameters()), 'lr': prior_optim['lr']})
        self.optimizer_syn = getattr(torch.optim, optim_type)(groups, **optim)
        self.trainable = [p for g in groups for p in g['params']]  # what each group-match backpropagates into
        self.optimizers.append(self.optimizer_syn)
        if train.get('scheduler'):
            self.setup_schedulers()

    # ----------------------------------------------------------------- one iteration
    def feed_data(self, data: dict) -> None:
        self.batch_groups = [int(g) for g in data['group']]

    def _loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output, target) if self.options.loss == 'l1' else F.mse_loss(output, target)

    @property
    def channels_last(self) -> bool:
        """NHWC convolutions (faster with cuDNN on recent GPUs); ``auto`` = on a GPU."""
        setting = self.options.channels_last
        return self.device.type == 'cuda' if setting == 'auto' else bool(setting)

    def _matching_network(self, scale: int, iteration: int) -> nn.Module:
        torch.manual_seed(self.seed * 1_000_003 + iteration)  # the same fresh network when a run is resumed
        net = build_network(dict(self.opt['network_match'], upscale=scale)).to(self.device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _draw(self, group: int, rng: np.random.Generator) -> tuple[np.ndarray, Draw]:
        """One group's real batch and augmentation, drawn in a fixed order (looped and batched alike)."""
        members = self.group_members[group]
        picks = rng.choice(members, self.options.real_batch, replace=len(members) < self.options.real_batch)
        return picks, Draw.sample(rng, self.options.flips, self.options.rotations)

    def _pair(self, hr: torch.Tensor, draw: Draw, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        """HR images -> the draw's augmented (HR crop, its bicubic LR crop)."""
        return augment_pair(hr, imresize_tensor(hr, 1 / scale), draw, self.crop, scale)

    def match_group(self, net: nn.Module, params: list[torch.Tensor], group: int, rng: np.random.Generator,
                    scale: int, backward: bool = True) -> torch.Tensor:
        """Match one group's gradients and backpropagate into its synthetic data; returns the distance."""
        picks, draw = self._draw(group, rng)
        real_hr, real_lr = self._pair(self.real.batch(picks), draw, scale)
        real_grads = torch.autograd.grad(self._loss(net(self._layout(real_lr)), real_hr), params)
        real_grads = [g.detach() for g in real_grads]
        syn_hr, syn_lr = self._pair(self.syn.images(group), draw, scale)
        syn_grads = torch.autograd.grad(self._loss(net(self._layout(syn_lr)), syn_hr), params, create_graph=backward)
        distance = gradient_distance(real_grads, syn_grads)
        if backward:
            distance.backward(inputs=self.trainable)
        return distance.detach()

    def match_groups(self, net: nn.Module, groups: Sequence[int], rng: np.random.Generator, scale: int,
                     backward: bool = True) -> torch.Tensor:
        """Match several groups in one batched pass; returns their distances, as ``match_group`` would one by one.

        The per-group gradients come from ``torch.func.vmap`` over ``grad`` of the SR loss, so each
        convolution runs once for all groups (a batch G times larger) instead of once per group:
        far fewer, larger kernel launches. The random draws are taken in the loop's order, so the
        result equals the loop's within float tolerance. Memory grows with ``len(groups)``; the
        caller bounds it by matching ``distill:group_batch`` groups at a time.
        """
        from torch.func import functional_call, grad, vmap

        draws = [self._draw(group, rng) for group in groups]
        real = [self._pair(self.real.batch(picks), draw, scale) for picks, draw in draws]
        images = self.syn.images_of(groups)
        syn = [self._pair(images[i], draw, scale) for i, (_, draw) in enumerate(draws)]
        weights = {name: p.detach() for name, p in net.named_parameters() if p.requires_grad}

        def loss(weights: dict, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
            return self._loss(functional_call(net, weights, (lr,)), hr)

        per_group = vmap(grad(loss), in_dims=(None, 0, 0))
        real_grads = per_group(weights, torch.stack([lr for _, lr in real]), torch.stack([hr for hr, _ in real]))
        syn_grads = per_group(weights, torch.stack([lr for _, lr in syn]), torch.stack([hr for hr, _ in syn]))
        distances = gradient_distances([real_grads[n].detach() for n in weights], [syn_grads[n] for n in weights])
        if backward:
            distances.sum().backward(inputs=self.trainable)
        return distances.detach()

    def match_batch(self, net: nn.Module, params: list[torch.Tensor], groups: Sequence[int],
                    rng: np.random.Generator, scale: int, backward: bool = True) -> torch.Tensor:
        """Distances of ``groups``: one at a time (``group_batch`` 1) or ``group_batch`` per batched pass."""
        size = self.options.group_batch
        if size == 1:
            return torch.stack([self.match_group(net, params, g, rng, scale, backward) for g in groups])
        return torch.cat([self.match_groups(net, groups[i:i + size], rng, scale, backward)
                          for i in range(0, len(groups), size)])

    def matching_loss(self, trials: int = 4) -> float:
        """Mean distance over every group for ``trials`` fixed networks and draws: a yardstick that does not
        change the synthetic set (the training log's value varies with each iteration's fresh network)."""
        total = 0.0
        for trial in range(trials):
            iteration = 10**9 + trial  # seeds no training iteration uses
            rng = np.random.default_rng([self.seed, 2**32 + trial])
            scale = self.options.scales[trial % len(self.options.scales)]
            net = self._matching_network(scale, iteration)
            params = [p for p in net.parameters() if p.requires_grad]
            groups = range(len(self.group_names))
            total += float(self.match_batch(net, params, groups, rng, scale, backward=False).sum())
        return total / (trials * len(self.group_names))

    def _train_on_synthetic(self, net: nn.Module, rng: np.random.Generator, scale: int) -> None:
        optimizer = torch.optim.SGD(net.parameters(), lr=self.options.lr_net)
        for _ in range(self.options.inner_steps):
            with torch.no_grad():
                hr = torch.cat([self.syn.images(g) for g in self.batch_groups])
            draw = Draw.sample(rng, self.options.flips, self.options.rotations)
            hr, lr = augment_pair(hr, imresize_tensor(hr, 1 / scale), draw, self.crop, scale)
            optimizer.zero_grad()
            self._loss(net(lr), hr).backward()
            optimizer.step()

    def optimize_parameters(self, current_iter: int) -> None:
        rng = np.random.default_rng([self.seed, current_iter])
        scale = self.options.scales[(current_iter - 1) % len(self.options.scales)]
        net = self._matching_network(scale, current_iter)
        params = [p for p in net.parameters() if p.requires_grad]
        for round_ in range(self.options.outer_loop):
            self.optimizer_syn.zero_grad(set_to_none=True)
            total = self.match_batch(net, params, self.batch_groups, rng, scale).sum()
            self.optimizer_syn.step()
            if self.syn.prior is None:
                with torch.no_grad():
                    self.syn.data.clamp_(0, 1)  # pixel values stay images
            if self.options.inner_steps and round_ < self.options.outer_loop - 1:
                self._train_on_synthetic(net, rng, scale)
        self.log_dict = OrderedDict(l_match=float(total) / len(self.batch_groups), scale=scale)

    # ----------------------------------------------------------------- checkpoints and output
    def save(self, epoch: int, current_iter: int) -> None:
        self.save_network(self.syn, 'net_syn', current_iter)
        self.save_training_state(epoch, current_iter)
        if current_iter == -1:
            self.export()

    @torch.no_grad()
    def synthetic_uint8(self) -> list[np.ndarray]:
        return [img for g in range(len(self.group_names)) for img in to_uint8(self.syn.images(g))]

    def write_sheet(self, name: str, title: str) -> None:
        from basicsr.utils.dist_util import get_dist_info

        if get_dist_info()[0] != 0:
            return
        rows = []
        with torch.no_grad():
            for g in range(min(self.options.sheet_groups, len(self.group_names))):
                real = to_uint8(self.real.batch(self.group_members[g][:4]))
                rows.append((self.group_names[g], real, to_uint8(self.syn.images(g))))
        if rows:
            contact_sheet(Path(self.opt['path']['visualization']) / name, rows,
                          title=f"{self.opt['name']}: {title}")

    def export(self) -> Path:
        """The distilled set as PNG folders and LMDBs in ``experiments/<name>/distilled``."""
        out = Path(self.opt['path']['experiments_root']) / 'distilled'
        ipg = self.options.images_per_group
        names = [f'{g}_syn{k:02d}' for g in self.group_names for k in range(ipg)]
        scales = [s for s in self.options.export_scales if self.size % s == 0]
        record = write_distilled(out, names, self.synthetic_uint8(), scales, {
            'space': self.options.space, 'groups': len(self.group_names), 'images_per_group': ipg,
            'source': str(self.opt['datasets']['train']['dataroot_gt']), 'source_images': len(self.real.keys),
            'source_bytes': self.real.stored_bytes, 'image_ratio': len(names) / len(self.real.keys)},
            inputs=[self.opt['datasets']['train']['dataroot_gt']])
        self.write_sheet('contact_end.png', 'end of distillation')
        get_root_logger().info(f"SRDistillModel: {len(names)} synthetic images -> {out} "
                               f"({record.get('storage_ratio', 0):.2%} of the source's stored bytes, "
                               f"{record['image_ratio']:.2%} of its images)")
        return out
