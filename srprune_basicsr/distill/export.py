"""Write a distilled set as BasicSR data: PNG folders and LMDBs (GT + bicubic LR per scale), and pictures.

Layout of ``<out>`` (built under ``<out>.partial`` and renamed when complete)::

    HR/<group>_syn<k>.png            the synthetic HR images, quantised to uint8
    LR_bicubic/X<s>/<same name>.png  MATLAB-style bicubic LR of each, as DIV2K's LR are made
    HR.lmdb, LR_bicubic_X<s>.lmdb    the same as BasicSR LMDBs (meta_info.txt), for PairedImageDataset
    distilled.json                   counts and storage against the source sub-images

A set whose LR images were learned (distribution matching: the LR patches are the data, the HR
their labels) is written with ``lr_images``: ``LR/X<s>/`` and ``LR_X<s>.lmdb`` hold those LR
images as they are, so no folder name claims a bicubic relation the pairs may not have.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.atomic import atomic_output_dir
from srprune_basicsr.formats.lmdb import build_lmdb_from_folder


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """[N, 3, H, W] float images in [0, 1] -> RGB uint8 arrays (rounded, as BasicSR's tensor2img)."""
    array = images.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return list(array)


def _write_folder(folder: Path, lmdb: Path, names: Sequence[str], images: Sequence[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for name, img in zip(names, images, strict=True):
        cv2.imwrite(str(folder / f'{name}.png'), img[:, :, ::-1])
    build_lmdb_from_folder(folder, lmdb, progress=False)


def write_distilled(out: str | os.PathLike, names: Sequence[str], images: Sequence[np.ndarray],
                    scales: Sequence[int], provenance: dict, inputs: Sequence = (),
                    lr_images: Mapping[int, Sequence[np.ndarray]] | None = None) -> dict:
    """Write the set (see the module docstring); returns the record written to distilled.json.

    ``scales`` get bicubic LR made from the HR images; ``lr_images`` (scale -> LR images) are
    written as given.
    """
    out = Path(out)
    lr_images = dict(lr_images or {})
    with atomic_output_dir(out, overwrite=True, inputs=inputs, kind='distilled') as tmp:
        _write_folder(tmp / 'HR', tmp / 'HR.lmdb', names, images)
        for scale in scales:
            _write_folder(tmp / 'LR_bicubic' / f'X{scale}', tmp / f'LR_bicubic_X{scale}.lmdb', names,
                          [imresize_uint8(img, 1 / scale) for img in images])
        for scale, lr in lr_images.items():
            _write_folder(tmp / 'LR' / f'X{scale}', tmp / f'LR_X{scale}.lmdb', names, lr)
        hr_bytes = sum(p.stat().st_size for p in (tmp / 'HR').glob('*.png'))
        record = {'images': len(names), 'scales': list(scales) + list(lr_images), 'hr_png_bytes': hr_bytes,
                  'lr': 'learned' if lr_images else 'bicubic', **provenance}
        source_bytes = provenance.get('source_bytes')
        if source_bytes:
            record['storage_ratio'] = hr_bytes / source_bytes
        (tmp / 'distilled.json').write_text(json.dumps(record, indent=2) + '\n')
    return record


def contact_sheet(path: str | os.PathLike, rows: Sequence[tuple[str, Sequence[np.ndarray], Sequence[np.ndarray]]],
                  cell: int = 96, title: str = '') -> None:
    """One row per group: its name, a few real sub-images, a gap, then its synthetic images."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    reals = max(len(r[1]) for r in rows)
    syns = max(len(r[2]) for r in rows)
    columns = reals + syns
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * cell / 72, len(rows) * cell / 72 + 0.4),
                             dpi=72, squeeze=False)
    for r, (name, real, syn) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.axis('off')
            img = real[c] if c < len(real) else (syn[c - reals] if 0 <= c - reals < len(syn) else None)
            if img is not None:
                ax.imshow(img)
            if r == 0:
                ax.set_title('real' if c < reals else 'synthetic', fontsize=8)
        axes[r][0].text(-0.05, 0.5, name, transform=axes[r][0].transAxes, ha='right', va='center', fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
