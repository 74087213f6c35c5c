#!/usr/bin/env bash
# Data, latent prior and distilled sets for options/study/cpu_distill_x2.yml, written under the current folder.
# Usage: (cd WORK && bash /path/to/repo/tools/prepare_distill_study.sh /path/to/shared/data)
# Budgets: PRIOR_ITERS (1000) for the autoencoder prior, DISTILL_ITERS (30) for each distillation; the
# matching network is FSRCNN on 48 px crops (cheap on CPU), every source image matched at each iteration.
# SPACES ("pixel latent") chooses the distilled sets; the prior is trained only for latent.
set -euo pipefail
DATA=${1:?give the folder holding T91/ BSD200/ Set5/ Set14/}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p hr
for set in T91 BSD200; do for f in "$DATA/$set/HR"/*; do ln -sf "$f" "hr/${set}_$(basename "$f")"; done; done
[ -d datasets/study_x2 ] || srprune prepare --hr hr --out datasets/study_x2 --scales 2 --crop 96 --step 48 --thresh 24 --lmdb
for b in Set5 Set14; do
  [ -d "datasets/$b" ] || srprune prepare --benchmark --hr "$DATA/$b/HR" --out "datasets/$b" --scales 2
done
PRIOR_ITERS=${PRIOR_ITERS:-1000} DISTILL_ITERS=${DISTILL_ITERS:-30} python - "$REPO" <<'PY'
import os, sys, yaml
from srprune_basicsr.formats.keys import root_keys, source_of
repo, gt = sys.argv[1], 'datasets/study_x2/HR_sub.lmdb'
prior_iters, distill_iters = int(os.environ['PRIOR_ITERS']), int(os.environ['DISTILL_ITERS'])
prior = yaml.safe_load(open(f'{repo}/options/distill/train_prior_ae.yml'))
prior['num_gpu'] = 0
prior['datasets']['train'].update(dataroot_gt=gt, gt_size=64, num_worker_per_gpu=1)
prior['train'].update(total_iter=prior_iters)
prior['train']['scheduler']['milestones'] = [prior_iters * 2]
prior['logger'].update(save_checkpoint_freq=prior_iters, use_tb_logger=False)
open('prior.yml', 'w').write(yaml.safe_dump(prior, sort_keys=False))
groups = len({source_of(k) for k in root_keys(gt)})  # every source image matched at every iteration
for space in ('pixel', 'latent'):
    opt = yaml.safe_load(open(f'{repo}/options/distill/distill_{space}_x2.yml'))
    opt['num_gpu'] = 0
    opt['datasets']['train'].update(dataroot_gt=gt, batch_size_per_gpu=groups)
    opt['network_match'] = {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'd': 56, 's': 12, 'm': 4}
    opt['distill'].update(crop=48, real_batch=8)
    opt['train']['total_iter'] = distill_iters
    opt['logger'].update(save_checkpoint_freq=distill_iters, print_freq=5, use_tb_logger=False)
    if space == 'latent':
        opt['path']['pretrain_network_prior'] = f"experiments/{prior['name']}/models/net_g_latest.pth"
    open(f'distill_{space}.yml', 'w').write(yaml.safe_dump(opt, sort_keys=False))
PY
SPACES=${SPACES:-pixel latent}
case " $SPACES " in *" latent "*) [ -f experiments/prior_ae/models/net_g_latest.pth ] || srprune train -opt prior.yml;; esac
for space in $SPACES; do
  [ -f "experiments/distill_${space}_x2/distilled/distilled.json" ] || srprune train -opt "distill_${space}.yml"
done
