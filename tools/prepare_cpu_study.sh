#!/usr/bin/env bash
# Data, proxy, loss-value, sobel and dynamic-uncertainty scores (and a distilled set) for
# options/study/cpu_fsrcnn_x2.yml, written under the current folder.
# Usage: (cd WORK && bash /path/to/repo/tools/prepare_cpu_study.sh /path/to/shared/data)
#        SCORES=path/to/scores.csv ... reuses loss-value scores made before on the same sub-images (the GPU
#        study reuses the CPU study's, so both studies prune the same samples) instead of training the proxy.
#        DU_SCORES=path/to/scores_du.csv likewise reuses dynamic-uncertainty scores instead of the tracking run.
#        DISTILL=1 also makes the distilled arm: one image per source image, pixel space (about 7 min).
set -euo pipefail
DATA=${1:?give the folder holding T91/ BSD200/ Set5/ Set14/ BSD100/}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p hr
for set in T91 BSD200; do for f in "$DATA/$set/HR"/*; do ln -sf "$f" "hr/${set}_$(basename "$f")"; done; done
[ -d datasets/study_x2 ] || srprune prepare --hr hr --out datasets/study_x2 --scales 2 --crop 96 --step 48 --thresh 24 --lmdb
for b in Set5 Set14 BSD100; do
  [ -d "datasets/$b" ] || srprune prepare --benchmark --hr "$DATA/$b/HR" --out "datasets/$b" --scales 2
done
# the SRCNN proxy (starts as bicubic: init identity), then its loss on every sub-image
python - "$REPO" <<'PY'
import sys, yaml
repo = sys.argv[1]
opt = yaml.safe_load(open(f'{repo}/srprune_basicsr/presets/demo/train_SRCNN_x2_demo.yml'))
opt['name'] = 'proxy_study_x2'
opt['datasets']['train'].update(dataroot_gt='datasets/study_x2/HR_sub.lmdb',
                                dataroot_lq='datasets/study_x2/LR_bicubic_X2_sub.lmdb', gt_size=48)
opt['datasets']['val'].update(dataroot_gt='datasets/Set5/GTmod12', dataroot_lq='datasets/Set5/LRbicx2')
open('proxy.yml', 'w').write(yaml.safe_dump(opt, sort_keys=False))
score = yaml.safe_load(open(f'{repo}/options/score/score_SRCNN_x2.yml'))
score['name'] = 'score_study_x2'
score['dataset'].update(dataroot_gt='datasets/study_x2/HR_sub.lmdb', dataroot_lq='datasets/study_x2/LR_bicubic_X2_sub.lmdb')
score['path']['pretrain_network_g'] = 'experiments/proxy_study_x2/models/net_g_latest.pth'
score['network_g'] = opt['network_g']
open('score.yml', 'w').write(yaml.safe_dump(score, sort_keys=False))
sobel = yaml.safe_load(open(f'{repo}/options/score/score_sobel_x2.yml'))
sobel['name'] = 'score_sobel_study_x2'
sobel['dataset'].update(dataroot_gt='datasets/study_x2/HR_sub.lmdb', dataroot_lq='datasets/study_x2/LR_bicubic_X2_sub.lmdb')
open('sobel.yml', 'w').write(yaml.safe_dump(sobel, sort_keys=False))
# dynamic uncertainty: the study's FSRCNN (bicubic skip, same crop, batch and lr) on the full set for 2,400
# iterations, a fixed-view PSNR snapshot (centre 48 px) of every sub-image each 150 iterations (16, J = 10)
du = yaml.safe_load(open(f'{repo}/options/train/train_FSRCNN_x2_tracking.yml'))
du['name'] = 'du_study_x2'
du['datasets']['train'].update(dataroot_gt='datasets/study_x2/HR_sub.lmdb', gt_size=48, num_worker_per_gpu=1,
                               dataroot_lq='datasets/study_x2/LR_bicubic_X2_sub.lmdb', seeded_shuffle=True)
du['datasets']['val'].update(dataroot_gt='datasets/Set5/GTmod12', dataroot_lq='datasets/Set5/LRbicx2')
du['network_g']['bicubic_skip'] = True
du['prune_tracking'].update(every=150, window=10, batch_size=64, crop=48)  # centre 48 px: 4x cheaper
du['train'].update(total_iter=2400, scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [2400],
                                               'restart_weights': [1], 'eta_min': 1e-7})
du['val']['val_freq'] = 2400
du['logger'].update(save_checkpoint_freq=600, use_tb_logger=False)
open('du.yml', 'w').write(yaml.safe_dump(du, sort_keys=False))
PY
# texture (sobel) scores: the second score of the texture-strata rule and the sobel arm (no network)
[ -f experiments/score_sobel_study_x2/scores.csv ] || srprune score -opt sobel.yml
if [ -n "${SCORES:-}" ]; then
  [ -f experiments/score_study_x2/scores.csv ] || { mkdir -p experiments/score_study_x2 && cp "$SCORES" experiments/score_study_x2/scores.csv; }
else
  [ -f experiments/proxy_study_x2/models/net_g_latest.pth ] || srprune train -opt proxy.yml
  [ -f experiments/score_study_x2/scores.csv ] || srprune score -opt score.yml
fi
if [ -n "${DU_SCORES:-}" ] && [ ! -f experiments/du_study_x2/scores_du.csv ]; then
  mkdir -p experiments/du_study_x2 && cp "$DU_SCORES" experiments/du_study_x2/scores_du.csv
fi
[ -f experiments/du_study_x2/scores_du.csv ] || srprune train -opt du.yml --auto_resume
if [ "${DISTILL:-0}" = 1 ]; then SPACES=pixel bash "$REPO/tools/prepare_distill_study.sh" "$DATA"; fi
