#!/usr/bin/env bash
# Data, proxy, loss-value, sobel and dynamic-uncertainty scores and a distilled set for
# options/study/cpu_edsr_x2.yml (the calibrated CPU regime), written under the current folder.
# Usage: (cd WORK && bash /path/to/repo/tools/prepare_cpu_edsr_study.sh /path/to/shared/data)
# The pool: T91 only, one 48 px sub-image every 192 px (504 sub-images, apart from each other): small
# enough that a random 10% (50 sub-images) is too little for the study's EDSR; with T91's usual
# half-overlapping 96 px sub-images a random 10% held about 40% of the content and matched full data.
# About 14 minutes beside two study shards (7 of them the distillation): the SRCNN proxy (400
# iterations) and its loss-value scores, sobel scores (no network), the study's EDSR on the whole pool
# with a fixed-view PSNR snapshot of every sub-image every 200 of its 2,000 iterations (dynamic
# uncertainty, J = 10), and a pixel-space distilled set of one image per source image (30 matching
# iterations of the study's EDSR).
set -euo pipefail
DATA=${1:?give the folder holding T91/ Set5/ Set14/ BSD100/}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRPRUNE=${SRPRUNE:-srprune}  # the command; "python3 -m srprune_basicsr" where no console script is installed
PY=${PYTHON:-python}
STAGE=${STAGE:-all}          # data: pool and benchmarks | scores: and the loss-value and sobel scores | all
# PROXY_ITERS (default: the demo preset's 400) shortens the proxy, for tests
$SRPRUNE prepare --help >/dev/null  # the command works before anything is made
[ -d datasets/t91_x2 ] || $SRPRUNE prepare --hr "$DATA/T91/HR" --out datasets/t91_x2 --scales 2 --crop 48 \
  --step 192 --thresh 24 --lmdb
for b in Set5 Set14 BSD100; do
  [ -d "datasets/$b" ] || $SRPRUNE prepare --benchmark --hr "$DATA/$b/HR" --out "datasets/$b" --scales 2
done
[ "$STAGE" = data ] && exit 0
PROXY_ITERS=${PROXY_ITERS:-} "$PY" - "$REPO" <<'PY'
import os, sys, yaml
from srprune_basicsr.formats.keys import root_keys, source_of
repo = sys.argv[1]
gt, lq = 'datasets/t91_x2/HR_sub.lmdb', 'datasets/t91_x2/LR_bicubic_X2_sub.lmdb'
study = yaml.safe_load(open(f'{repo}/options/study/cpu_edsr_x2.yml'))
budget = study['budget']
edsr = {**yaml.safe_load(open(f"{repo}/{study['train_options']}"))['network_g'], **study['network_g']}
# the SRCNN proxy (starts as bicubic), then its loss on every sub-image
proxy = yaml.safe_load(open(f'{repo}/srprune_basicsr/presets/demo/train_SRCNN_x2_demo.yml'))
proxy['name'] = 'proxy_t91_x2'
proxy['datasets']['train'].update(dataroot_gt=gt, dataroot_lq=lq, gt_size=48, num_worker_per_gpu=0)
proxy['datasets']['val'].update(dataroot_gt='datasets/Set5/GTmod12', dataroot_lq='datasets/Set5/LRbicx2')
if os.environ['PROXY_ITERS']:
    iters = int(os.environ['PROXY_ITERS'])
    proxy['train']['total_iter'] = proxy['val']['val_freq'] = proxy['logger']['save_checkpoint_freq'] = iters
open('proxy.yml', 'w').write(yaml.safe_dump(proxy, sort_keys=False))
score = yaml.safe_load(open(f'{repo}/options/score/score_SRCNN_x2.yml'))
score['name'] = 'score_t91_x2'
score['dataset'].update(dataroot_gt=gt, dataroot_lq=lq)
score['path']['pretrain_network_g'] = 'experiments/proxy_t91_x2/models/net_g_latest.pth'
score['network_g'] = proxy['network_g']
open('score.yml', 'w').write(yaml.safe_dump(score, sort_keys=False))
sobel = yaml.safe_load(open(f'{repo}/options/score/score_sobel_x2.yml'))
sobel['name'] = 'score_sobel_t91_x2'
sobel['dataset'].update(dataroot_gt=gt, dataroot_lq=lq)
open('sobel.yml', 'w').write(yaml.safe_dump(sobel, sort_keys=False))
# dynamic uncertainty: the study's network, crop, batch, lr and budget on the whole pool
iters = budget['total_iter']
du = yaml.safe_load(open(f'{repo}/options/train/train_FSRCNN_x2_tracking.yml'))
du['name'] = 'du_t91_x2'
du['network_g'] = edsr
du['datasets']['train'].update(dataroot_gt=gt, dataroot_lq=lq, gt_size=budget['gt_size'], seeded_shuffle=True,
                               batch_size_per_gpu=budget['batch_size'], num_worker_per_gpu=0)
du['datasets']['val'].update(dataroot_gt='datasets/Set5/GTmod12', dataroot_lq='datasets/Set5/LRbicx2')
du['prune_tracking'].update(every=iters // 10, window=10, batch_size=64)
du['train']['optim_g']['lr'] = float(budget['lr'])
du['train'].update(total_iter=iters, scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [iters],
                                               'restart_weights': [1], 'eta_min': 1e-7})
du['val']['val_freq'] = iters
du['logger'].update(save_checkpoint_freq=iters, use_tb_logger=False)
open('du.yml', 'w').write(yaml.safe_dump(du, sort_keys=False))
# one distilled image per source image, matched with the study's network on every source at each iteration
distill = yaml.safe_load(open(f'{repo}/options/distill/distill_pixel_x2.yml'))
distill['name'] = 'distill_pixel_t91_x2'
distill['num_gpu'] = 0
distill['datasets']['train'].update(dataroot_gt=gt, batch_size_per_gpu=len({source_of(k) for k in root_keys(gt)}))
distill['network_match'] = {**edsr, 'img_range': 1.}
distill['distill'].update(crop=48, real_batch=8, export_scales=[2])
distill['train']['total_iter'] = 30
distill['logger'].update(save_checkpoint_freq=30, print_freq=5, use_tb_logger=False)
open('distill.yml', 'w').write(yaml.safe_dump(distill, sort_keys=False))
PY
[ -f experiments/score_sobel_t91_x2/scores.csv ] || $SRPRUNE score -opt sobel.yml
[ -f experiments/proxy_t91_x2/models/net_g_latest.pth ] || $SRPRUNE train -opt proxy.yml
[ -f experiments/score_t91_x2/scores.csv ] || $SRPRUNE score -opt score.yml
[ "$STAGE" = scores ] && exit 0
[ -f experiments/du_t91_x2/scores_du.csv ] || $SRPRUNE train -opt du.yml --auto_resume
[ -f experiments/distill_pixel_t91_x2/distilled/distilled.json ] || $SRPRUNE train -opt distill.yml
