"""The start-up log line of ``prune_online:`` says which epochs prune, for runs of a few epochs too."""

from srprune_basicsr.online.options import online_options
from srprune_basicsr.online.plan import RunShape
from srprune_basicsr.online.sampler import pruned_epochs


def shape(epochs: int) -> RunShape:
    return RunShape(per_epoch=10, total_iter=10 * epochs, total_epochs=epochs, batch=4, world=1, enlarge=1)


def test_a_short_run_is_described_as_it_prunes() -> None:
    loss = online_options({'criterion': 'loss', 'ratio': 0.5, 'anneal': 0.875}, 'x.yml')
    # 3 epochs: 1 and 2 are below 0.875 x 3, so no epoch at the end trains on all data
    assert pruned_epochs(loss, shape(3)) == ('epochs 1-2 of 3 (counted from 0) may prune, the first 1 and none at '
                                             'the end on all data (anneal 0.875 of 3 epochs)')
    assert pruned_epochs(loss, shape(16)).startswith('epochs 1-13 of 16 (counted from 0) may prune, the first 1 and '
                                                     'the last 2 on all data')
    uncertainty = online_options({'criterion': 'uncertainty', 'keep': 0.5, 'window': 5}, 'x.yml')
    assert pruned_epochs(uncertainty, shape(8)) == ('epochs 5-6 of 8 (counted from 0) may prune, the first 5 and the '
                                                    'last 1 on all data')
