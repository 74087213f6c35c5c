"""``experiments/<name>/prune_online.json`` and ``prune_online.png``: what an online-pruned run used and saved.

Per epoch: the samples drawn from (``samples`` of ``of``), the samples trained, the steps taken
against the full run's (``full_steps``) and the steps saved, the epoch's wall-clock and the median
step time, from which the wall-clock saved is estimated (saved steps x median step). ``totals``
sums them. The plot shows the samples used per epoch against the whole set.
"""

from __future__ import annotations

import json
from pathlib import Path

from srprune_basicsr.formats.atomic import atomic_write_text

FILE = 'prune_online.json'


def totals(records: list[dict]) -> dict:
    steps = sum(r['steps'] for r in records)
    full = sum(r['full_steps'] for r in records)
    estimates = [r['saved_seconds_estimate'] for r in records if r.get('saved_seconds_estimate') is not None]
    return {'epochs': len(records), 'steps': steps, 'full_steps': full, 'saved_steps': full - steps,
            'saved_share': round((full - steps) / full, 4) if full else 0.0,
            'sample_visits': sum(r['samples'] for r in records),
            'seconds': round(sum(r['seconds'] for r in records), 3),
            'saved_seconds_estimate': round(sum(estimates), 3)}


def write(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=1) + '\n')


def read(path: str | Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f'{path}: not a readable prune_online record ({err})') from None
    if not isinstance(record, dict) or 'totals' not in record:
        raise ValueError(f'{path}: not a prune_online record (no totals)')
    return record


def epoch_line(row: dict) -> str:
    why = f" ({row['all_data']})" if 'all_data' in row else ''
    return (f"prune_online: epoch {row['epoch']}: {row['samples']}/{row['of']} samples{why}, {row['steps']} of "
            f"{row['full_steps']} steps ({row['saved_steps']} saved), {row['seconds']:.1f} s")


def summary_line(total: dict) -> str:
    return (f"prune_online: {total['steps']} of {total['full_steps']} steps taken over {total['epochs']} epochs "
            f"({total['saved_steps']} saved, {100 * total['saved_share']:.1f}%; about "
            f"{total['saved_seconds_estimate']:.0f} s of training saved)")


def plot(records: list[dict], path: Path) -> Path | None:
    """Samples used per epoch (bars) against the whole set (line)."""
    if not records:
        return None
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [r['epoch'] for r in records]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(epochs, [r['samples'] for r in records], color='tab:blue', label='samples used')
    ax.axhline(records[0]['of'], color='black', linestyle='--', linewidth=1, label='whole set')
    ax.set_xlabel('epoch')
    ax.set_ylabel('samples')
    total = totals(records)
    ax.set_title(f"prune_online: {total['steps']} of {total['full_steps']} steps "
                 f"({100 * total['saved_share']:.1f}% saved)")
    ax.legend(loc='lower left')
    fig.tight_layout()
    tmp = path.with_name(f'.{path.stem}.partial.png')
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
