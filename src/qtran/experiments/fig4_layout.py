"""What names Figure 4's pieces: the algorithms, the penalties P trained together in one run
(`env_values`), and how one such batched run splits into a curve per P.

Both the experiment (fig4, which trains and draws) and the claims checked against its runs
(fig4_claims) read these; keeping them here, below both, means neither imports the other back.
"""

from __future__ import annotations

import numpy as np

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix")
PENALTIES = (0.5, 1.0, 1.5)


def split_by_value(summary: dict) -> dict[float, dict]:
    """One batched run's curves, split per environment value: {P: {"steps", "returns"[E, seeds]}}."""
    values = np.asarray(summary["env_values"])
    returns = np.asarray(summary["eval_curve"]["returns"])
    return {float(v): {"steps": summary["eval_curve"]["steps"], "returns": returns[:, values == v]}
            for v in dict.fromkeys(values.tolist())}
