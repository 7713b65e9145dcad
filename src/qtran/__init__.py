"""qtran: QTRAN-base, QTRAN-alt, VDN, QMIX and IQL for cooperative multi-agent RL, in JAX."""

from qtran.config import make_config
from qtran.envs import make_env
from qtran.algorithms import make_algorithm
from qtran.igm import check_igm
from qtran.run import train

__version__ = "0.1.0"
__all__ = ["make_config", "make_env", "make_algorithm", "check_igm", "train"]
