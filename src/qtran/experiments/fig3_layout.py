"""What names Figure 3's pieces: the algorithms, the panels (title and environment overrides,
<out>/<panel>/<algo>/ on disk) and how each design of s is described.

Both the experiment (fig3, which trains and draws) and the claims checked against its runs
(fig3_claims) read these; keeping them here, below both, means neither imports the other back.
"""

from __future__ import annotations

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix", "iql")
PANELS = {
    "fig3a": ("Figure 3a: GS, epsilon annealed 1.0 -> 0.1", ["env.domains=gs"]),
    "fig3b": ("Figure 3b: GS, full exploration (epsilon = 1)", ["env.domains=gs", "eps.start=1", "eps.end=1"]),
    "fig3c": ("Figure 3c: MGS, all s_i equal", ["env.domains=mgs", "env.equal_s=true"]),
}
# One line per design of fig3.DESIGNS, for captions and the claims table's budgets.
DESIGN_TEXT = {"single": "s drawn once (s_seed=2), the same for every run",
               "per_run": "s drawn once per run from its seed",
               "per_episode": "s re-drawn every episode"}
