"""Per-run means of the training metrics over one chunk of iterations.

Both trainers (the compiled one driven by `qtran.run`, and `qtran.host_loop` for environments that
step in Python) log the same columns, so the averaging lives below both of them.
"""

from __future__ import annotations

import numpy as np

LOSS_KEYS = ("loss", "loss_td", "loss_opt", "loss_nopt")


def chunk_means(metrics: dict) -> dict[str, np.ndarray]:
    """Per-seed means over the iterations of a chunk that ran (and, for losses, updated)."""
    active = np.asarray(metrics["active"])[:, None]
    trained = np.asarray(metrics["trained"]) & active
    out = {}
    for name in ("train_return", "epsilon") + LOSS_KEYS:
        if name not in metrics:
            continue
        values = np.asarray(metrics[name], dtype=float)
        use = trained if name in LOSS_KEYS else np.broadcast_to(active, values.shape)
        count = use.sum(0)
        out[name] = np.where(count > 0, (values * use).sum(0) / np.maximum(count, 1), np.nan)
    return out
