"""The paper's Figure 4 claim at N = 2, P = 1.5 (modified predator-prey, one prey, 5x5): with a
high miscoordination penalty QTRAN-alt learns to catch, VDN only learns to avoid the penalty.

A team earns +1 per catch (two or more predators next to a prey) and -P whenever exactly one
predator is next to a prey. A team that never catches returns at most 0; one whose greedy
episodes return more than 0 on average catches, more than it is penalised. The claim, as
asserted: at least two of three QTRAN-alt teams catch, no VDN team does, and QTRAN-alt's mean
beats VDN's.

Budget: 1M environment steps with one gradient update (batch 32) every 4 steps, seeds 0-2;
everything else is `reproduce fig4`'s setting. The released code's budget is 3M steps with an
update every step, far beyond a test. This configuration was run once before the test was
written (NOTES.md, "Figure 4 learning at N = 2, P = 1.5", has both curves) and not tuned:
final greedy rewards alt 5.3 / 16.8 / -0.8, VDN -2.0 / -2.0 / -1.9. At 150k steps neither
catches (both about -3). About 6-11 minutes of one core.
"""

import numpy as np
import pytest

from qtran.run import train

pytestmark = pytest.mark.slow

SETTING = ["env=predator_prey", "env.agents=2", "env.prey=1", "env.grid=5", "env.penalty=1.5", "seeds=3",
           "steps=1000000", "updates_per_step=0.25", "buffer_size=1000", "target_update_interval=2000",
           "warmup_steps=3200", "eval.interval=50000", "eval.episodes=20", "adam_eps=1.5e-4",
           "progress=false"]


def test_qtran_alt_catches_where_vdn_only_avoids_the_penalty():
    alt = np.asarray(train(SETTING + ["algo=qtran-alt"], write=False)["final_eval_return"])
    vdn = np.asarray(train(SETTING + ["algo=vdn"], write=False)["final_eval_return"])
    catches = lambda returns: int((returns > 0).sum())  # noqa: E731  teams whose catches outweigh penalties
    assert catches(alt) >= 2, (alt, vdn)
    assert catches(vdn) == 0, (alt, vdn)
    assert alt.mean() > vdn.mean(), (alt, vdn)
