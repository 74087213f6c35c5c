"""AutoencoderImageDataset: GT images as both input and target, to train a generator prior with SRModel.

Same options as PairedImageDataset minus ``dataroot_lq`` (the LQ is the GT itself, scale 1):
random ``gt_size`` crops and flips/rotations in training, whole images otherwise. One database
is opened once, so an LMDB is never opened twice in a process.
"""

from __future__ import annotations

from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import Dataset

from srprune_basicsr.formats.keys import image_files, root_keys


@DATASET_REGISTRY.register()
class AutoencoderImageDataset(Dataset):
    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.io_backend_opt = dict(opt['io_backend'])
        self.file_client = None
        self.backend = self.io_backend_opt['type']
        self.keys = root_keys(opt['dataroot_gt'], self.backend)
        if self.backend == 'lmdb':
            self.io_backend_opt.update(db_paths=[opt['dataroot_gt']], client_keys=['gt'])
            self.paths = list(self.keys)
        else:
            files = {p.stem: str(p) for p in image_files(opt['dataroot_gt'])}
            self.paths = [files[k] for k in self.keys]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            options = dict(self.io_backend_opt)
            self.file_client = FileClient(options.pop('type'), **options)
        img = imfrombytes(self.file_client.get(self.paths[index], 'gt'), float32=True)
        if self.opt['phase'] == 'train':
            img, _ = paired_random_crop(img, img.copy(), self.opt['gt_size'], 1, self.paths[index])
            img = augment([img], self.opt.get('use_hflip', True), self.opt.get('use_rot', True))
        tensor = img2tensor(img, bgr2rgb=True, float32=True)
        return {'lq': tensor, 'gt': tensor.clone(), 'lq_path': self.paths[index], 'gt_path': self.paths[index]}
