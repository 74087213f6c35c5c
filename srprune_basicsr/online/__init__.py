"""``prune_online:``: prune during the run, so one training takes fewer steps (docs/online-pruning.md).

Each epoch the training loader's sampler draws a subset from per-sample records of the same run
(``criterion: loss``, InfoBatch for SR: the latest training loss; ``criterion: uncertainty``, He et
al. in one run: the sliding-window std of per-sample PSNR), and the model weights the pixel loss of
the kept samples so the expected gradient stays that of the whole set. The run covers the epochs the
full run would cover; the LR schedule follows the full run's iterations, stretched onto the steps
taken. ``options`` parses the block, ``loss`` and ``uncertainty`` rank samples, ``plan`` maps epochs
to steps and schedule positions, ``pruner`` keeps the state (merged across ranks, saved with every
checkpoint), ``sampler`` and ``model`` attach it to BasicSR's loader and model, ``record`` writes
``prune_online.json`` and its plot.
"""
