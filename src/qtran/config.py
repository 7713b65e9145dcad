"""Typed configuration and `key=value` overrides.

The defaults are the paper's choices where the paper states one, otherwise the authors'
released code's (repository Sonkyunghwan/QTRAN). OmegaConf gives Hydra-style dotted overrides on top of
these dataclasses, with type checking and unknown keys refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, List, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from qtran.config_keys import check_overrides, or_list
from qtran.envs import FAMILIES, TASK_FAMILIES, family
from qtran.errors import UserError


@dataclass
class EpsConfig:
    """Epsilon-greedy exploration: epsilon falls linearly from `start` to `end`."""

    # Epsilon at the first step (after the warm-up's uniformly random actions).
    start: float = 1.0
    # Epsilon once the anneal is over, kept to the end of the run.
    end: float = 0.1
    # Environment steps of the linear anneal from start to end; None means 45% of `steps`
    # (the released code's schedule). start = end = 1 is full exploration.
    anneal_steps: Optional[int] = None


@dataclass
class EvalConfig:
    """Greedy evaluation: every agent acts on its own Q_i, without exploration."""

    # Environment steps between greedy evaluations; None means steps / 20.
    interval: Optional[int] = None
    # Greedy episodes per run at each evaluation.
    episodes: int = 32


@dataclass
class AgentConfig:
    """The agents' Q networks."""

    # Width of the agent network (feed-forward: obs -> hidden -> hidden -> hidden -> Q with the
    # `mlp` head, as the released code with 64).
    hidden: int = 64
    # true: one network for all agents with a one-hot agent id appended to the observation;
    # false: each agent has its own parameters.
    shared: bool = True
    # true: a GRU agent (input layer, GRU cell, Q head) for partially observable tasks, trained
    # on whole stored episodes with the hidden state reset at each episode's first step;
    # false: feed-forward agents learn from single sampled transitions, as the released code.
    recurrent: bool = False
    # Kernel initialisation of the agent's dense layers: "default" (Flax's LeCun normal),
    # "code" (the released code's N(0, 0.1)) or "orthogonal" (gain 1, JaxMARL's baselines);
    # biases start at zero in all three.
    init: str = "default"
    # The layers after the trunk: "mlp" (a ReLU layer, then linear: the released code) or
    # "linear" (the trunk straight to Q values: PyMARL's and JaxMARL's GRU agents).
    head: str = "mlp"
    # With shared parameters, append a one-hot agent id to each agent's input (true), or not
    # (false: the released predator-prey code, whose observation carries only the id i / N).
    onehot_id: bool = True


@dataclass
class QtranConfig:
    """QTRAN-base and QTRAN-alt."""

    # Weight of L_opt (released code: 1; PyMARL uses 1 with lambda_nopt 0.1, with which
    # QTRAN-base finds climb21's optimum in 1/5 seeds instead of 4/5).
    lambda_opt: float = 1.0
    # Weight of L_nopt (QTRAN-base) or of its counterfactual form L_nopt-min (QTRAN-alt)
    # (released code: 1).
    lambda_nopt: float = 1.0
    # true (paper): a state-value network V_jt; false: V = 0, as in the released code.
    v_net: bool = True
    # How per-agent hidden features are combined: paper "sum", released code "mean".
    pooling: str = "sum"
    # paper: y = r + g Q_jt^-(tau', u_bar'); code: base r + g sum_i max Q_i^-,
    # alt r + g max_i max_a Q_jt,i^-(tau', a, u_bar'_-i).
    td_target: str = "paper"
    # Width of the joint network, QTRAN-alt's counterfactual network and the V network.
    hidden: int = 64
    # QTRAN-base's f_r from the pooled h_Q to Q_jt: "relu" (one ReLU layer, then linear) or
    # "elu2" (two ELU layers, then linear: the released predator-prey code).
    f_r: str = "relu"
    # Kernels of h_Q, h_V, f_r, f_v and QTRAN-alt's heads: "default" (Flax's LeCun normal) or
    # "code" (the released code's N(0, 0.1)); biases start at zero.
    init: str = "default"


@dataclass
class QmixConfig:
    """QMIX's mixing network, also the mixer of weighted QMIX."""

    # Width of the mixing network's hidden layer (QMIX paper: 32; the QTRAN code: 64).
    embed: int = 32
    # Layers of each hypernetwork, 1 or 2 (QMIX paper: 2; the QTRAN code: 1).
    hypernet_layers: int = 2
    # Hidden width of 2-layer hypernetworks.
    hypernet_hidden: int = 64
    # None: Flax's default kernels; a number: orthogonal kernels with this gain in every mixer
    # layer (JaxMARL's baselines use 0.001, so Q_tot starts near zero).
    init_scale: Optional[float] = None
    # Where the first mixing layer's bias enters: "inside" elu(q w1 + b1) (the QMIX paper) or
    # "after" elu(q w1) + b1 (the released QTRAN code).
    b1: str = "inside"
    # Mixer kernels when init_scale is unset: "default" (Flax's) or "code" (N(0, 0.1)).
    init: str = "default"


@dataclass
class QplexConfig:
    """QPLEX (Wang et al., 2021). The paper does not print these sizes; the defaults
    are the authors' released settings, as carried in PyMARL2's qplex.yaml."""

    # Width of the networks that give w_i(s), b_i(s) and the attention parts (Section 3,
    # transformation and attention; the authors' adv_hypernet_embed 64, 2-layer networks).
    hidden: int = 64
    # Number of attention heads K (the authors' num_kernel 4).
    heads: int = 4
    # The authors' code (dmaq_general.py, as carried in PyMARL2) stops the gradient of the
    # advantage term: Q_tot = sum_i (w_i Q_i(u_i) + b_i) + sum_i (lambda_i - 1) sg(w_i A_i), the same
    # value as the paper's sum_i V_i(s) + sum_i lambda_i A_i(s, u_i), but the agents and w_i learn
    # only through the first sum and lambda_i only through the second. The paper's equations
    # have no stop-gradient (false).
    stop_gradient: bool = False


@dataclass
class WqmixConfig:
    """Weighted QMIX, OW-QMIX and CW-QMIX (Rashid et al., 2020)."""

    # Weighted QMIX (Rashid et al., 2020), the weightings' section (4): the weight alpha in (0, 1] given to the
    # joint actions outside the weighting's condition. 0.1 is the authors' setting (PyMARL2's
    # ow_qmix.yaml / cw_qmix.yaml: "w: 0.1 # alpha in the paper"); alpha = 1 is plain QMIX.
    alpha: float = 0.1
    # The deep RL algorithm's section (5): the unrestricted Q-hat* is a feed-forward network of the state and separate
    # agents' utilities; 3 hidden ReLU layers of this width plus a state value V(s), as in the
    # authors' code (central_mixing_embed_dim 256).
    central_hidden: int = 256


@dataclass
class CheckpointConfig:
    """Checkpoints of the whole training state, for `qtran resume`."""

    # Chunks (evaluation intervals) between checkpoints of the whole training state, for
    # `qtran resume`; 0 turns checkpoints off. One is also written at the end.
    every: int = 1
    keep: int = 2  # newest checkpoints kept; older ones are deleted


@dataclass
class Config:
    algo: str = "qtran-base"  # qtran-base, qtran-alt, vdn, qmix, iql, qplex, ow-qmix or cw-qmix
    # The environment family, chosen with env=NAME (default matrix); each family's env.* settings
    # are its own (`qtran config env=NAME` prints them).
    env: Any = None
    seeds: int = 1  # number of seeds, trained together as one vmapped batch
    seed: int = 0  # first seed; the run uses seed, seed+1, ..., seed+seeds-1
    # Values of the environment's batchable setting (predator-prey: the penalty P) trained
    # together with the seeds in one compiled program: runs = every value x every seed.
    env_values: Optional[List[float]] = None
    steps: int = 20000  # environment steps per seed
    n_envs: int = 1  # parallel environments per seed
    batch_size: int = 32  # episodes per gradient update
    buffer_size: int = 5000  # episodes kept in replay (whole episodes, padded to the episode limit)
    lr: float = 5e-4  # learning rate (released code: 5e-4)
    adam_eps: float = 1e-8  # the optimizer's epsilon (Adam's, or RAdam's)
    optimizer: str = "adam"  # "adam" (released code, PyMARL) or "radam" (JaxMARL's baselines)
    # "constant", or "linear": lr falls linearly to 0 over the run's gradient updates (JaxMARL's
    # LR_LINEAR_DECAY).
    lr_schedule: str = "constant"
    gamma: float = 0.99  # discount factor
    grad_clip: float = 0.0  # global-norm clip; 0 turns it off
    target_update_interval: int = 200  # gradient updates between hard target copies
    warmup_steps: int = 320  # first steps act uniformly at random and do not update (released code: 320)
    updates_per_step: float = 1.0  # gradient updates per environment step
    # pick next greedy actions with the online network (PyMARL) instead of the target network (paper).
    double_q: bool = False
    # "cut": an episode stopped by env.episode_limit (or a PettingZoo environment's truncation)
    # bootstraps from its last state (the limit is not part of the task); "terminal": that last
    # step is terminal (JaxMARL's baselines).
    time_limit: str = "cut"
    # Exact compute cuts: work shared by every sample done once (same loss, same gradients,
    # float32 rounding apart). Single-state
    # one-step games run each agent, h_V, V_jt and the QMIX hypernetworks once per update, not
    # once per sample; h_Q's first layer is split into a trunk part computed once and an
    # action row, reused for every action a loss needs. false: the plain per-sample path, for
    # benchmarks and tests that compare the two.
    compute_cuts: bool = True
    eps: EpsConfig = field(default_factory=EpsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    qtran: QtranConfig = field(default_factory=QtranConfig)
    qmix: QmixConfig = field(default_factory=QmixConfig)
    qplex: QplexConfig = field(default_factory=QplexConfig)
    wqmix: WqmixConfig = field(default_factory=WqmixConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    # Spread the runs (seeds) over every local device with JAX sharding when there are several.
    # (Accelerators, or on a CPU one device per core: qtran.runtime. A batch that does not split
    # evenly gets padding runs, copies of run 0 that are trained and never written: 15 runs on
    # 2 devices train as 16. A run's numbers can differ in the last bits with the device count.)
    shard: bool = True
    # Keep compiled programs in JAX's persistent cache ($XDG_CACHE_HOME/qtran/jax, default
    # ~/.cache/qtran/jax), so the same run compiles nothing the second time. false, or
    # QTRAN_COMPILE_CACHE=0 in the environment, turns it off. Process-wide: in Python, the latest
    # qtran.train call's setting holds.
    compile_cache: bool = True
    out: Optional[str] = None  # run directory; None means runs/<algo>-<env>-<time>
    # progress bar (drawn only on a terminal) and status lines on stderr; false: warnings and
    # errors only.
    progress: bool = True
    tensorboard: bool = True  # TensorBoard events in the run directory (tb/)


def _split(arg: str) -> tuple[str, str]:
    if "=" not in arg or arg.startswith("="):
        raise UserError(f"expected key=value, got {arg!r}")
    key, value = arg.split("=", 1)
    return key.strip(), value


LIST_KEYS = ("env_values",)  # settings that hold a list of numbers


def list_value(key: str, value: str) -> str:
    """`env_values=0.5,1.0` (or one value, `env_values=0.5`) as the YAML list `[0.5,1.0]`
    OmegaConf needs; a bracketed list, null or an interpolation is left as it is."""
    text = value.strip()
    if key not in LIST_KEYS or not text or text.startswith(("[", "${")) or text.lower() in ("null", "~"):
        return value
    return f"[{text}]"


def make_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Defaults, then `key=value` overrides; `env=NAME` picks the environment family."""
    pairs = [_split(a) for a in overrides]
    env_name = "matrix"
    rest, tasks = [], []
    for key, value in pairs:
        if key == "env" or (key == "env.name" and value in FAMILIES):
            env_name = value
        elif key == "env.name":
            tasks.append(value)
        else:
            rest.append(f"{key}={list_value(key, value)}")
    if tasks:  # env=jaxmarl env.name=MPE_simple_spread_v3: the outside environment's own name
        if env_name not in TASK_FAMILIES:
            raise UserError(f"unknown environment {tasks[-1]!r}; choose one of {', '.join(FAMILIES)}, or name "
                            f"an outside environment with {or_list(f'env={t}' for t in TASK_FAMILIES)} "
                            f"env.name={tasks[-1]} (kept as env.task)")
        rest.append(f"env.task={tasks[-1]}")
    base = _base(env_name)
    rest = check_overrides(base, env_name, rest, env_config_classes())
    try:
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(rest))
        OmegaConf.resolve(cfg)  # an interpolation (`steps=${seeds}`) fails here, not on a later read
    except OmegaConfBaseException as err:
        raise UserError(_one_line(err)) from None
    except (yaml.YAMLError, UnicodeError, RecursionError, TypeError):  # unreadable value; `env_values.0=`
        raise UserError(_culprit(base, rest)) from None
    validate(cfg)
    return cfg


def env_config_classes() -> dict[str, type]:
    """Environment name -> the dataclass of its `env.*` settings."""
    return {name: fam.config for name, fam in FAMILIES.items()}


def _culprit(base: DictConfig, items: list[str]) -> str:
    """Which `key=value` YAML cannot read (a control character, undecodable bytes, `a: b: c`)
    or OmegaConf cannot merge (an item of a list given as a key)."""
    for item in items:
        try:
            OmegaConf.merge(base, OmegaConf.from_dotlist([item]))
        except (yaml.YAMLError, UnicodeError, RecursionError, TypeError, OmegaConfBaseException):
            key, _, value = item.partition("=")
            return f"{key}: cannot set it to {value!r}"
    return "cannot read the settings"


def _base(env_name: str) -> DictConfig:
    """The defaults with `env_name`'s family, unknown keys refused (but `env.kwargs.*`, the
    free-form constructor arguments of an outside environment, are open)."""
    base = OmegaConf.structured(Config(env=family(env_name).config()))
    OmegaConf.set_struct(base, True)
    if "kwargs" in base.env:
        OmegaConf.set_struct(base.env.kwargs, False)
    return base


def load_config(run_dir) -> DictConfig:
    """The resolved config a run directory was trained with (plain YAML data; runs no code)."""
    from pathlib import Path

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"no config.yaml in {run_dir} (not a qtran run directory)")
    try:
        saved = OmegaConf.load(path)
        env_name = str(saved.env.name)
        cfg = OmegaConf.merge(_base(env_name), saved)
    except OmegaConfBaseException as err:
        raise UserError(f"{path}: {_one_line(err)}") from None
    except Exception as err:  # malformed YAML
        raise UserError(f"{path}: cannot read it ({type(err).__name__})") from None
    validate(cfg)
    return cfg


# OmegaConf's wording of a value of the wrong type, and what we say instead (as for
# `steps=abc`: "steps must be a whole number, got 'abc'").
_WRONG_TYPE = (
    (re.compile(r"Value '(.*)' of type '\w+' could not be converted to Float"), "a number"),
    (re.compile(r"Value '(.*)' of type '\w+' could not be converted to Integer"), "a whole number"),
    (re.compile(r"Value '(.*)' is not a valid bool"), "true or false"),
)


def _one_line(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    key = getattr(err, "full_key", None)
    if isinstance(err, KeyError) and key:
        return f"unknown setting {key!r}"
    for pattern, kind in _WRONG_TYPE:
        found = pattern.match(text)
        if found and key:
            return f"{key} must be {kind}, got {found.group(1)!r}"
    return f"{key}: {text}" if key else text


INT32_MAX = 2**31 - 1
FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max


def _numbers(node, prefix: str = ""):
    """(dotted key, value) of every int and float setting (not bools; not env.kwargs, whose
    meaning belongs to an outside environment)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (dict, list)) and key != "env.kwargs":
            yield from _numbers(v, f"{key}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield key, v


def validate(cfg: DictConfig) -> None:
    from qtran.algorithms import ALGORITHMS  # late: algorithms import networks, not config
    from qtran.algorithms.qmix import B1_PLACES
    from qtran.algorithms.qtran_base import F_R_FORMS
    from qtran.networks import AGENT_HEADS, AGENT_INITS, JOINT_INITS

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    for key, value in _numbers(OmegaConf.to_container(cfg)):  # JAX takes 32-bit integers, finite floats
        if isinstance(value, int):
            need(abs(value) <= INT32_MAX, f"{key}={value} is too large (at most {INT32_MAX})")
        else:
            need(math.isfinite(value), f"{key} must be a finite number, got {value}")
    need(cfg.algo in ALGORITHMS, f"unknown algorithm {cfg.algo!r}; choose one of {', '.join(ALGORITHMS)}")
    need(cfg.env.name in FAMILIES, f"unknown environment {cfg.env.name!r}")
    need(cfg.seeds >= 1, f"seeds must be at least 1, got {cfg.seeds}")
    need(cfg.seed >= 0, f"seed must be non-negative, got {cfg.seed}")
    need(cfg.steps >= 1, f"steps must be at least 1, got {cfg.steps}")
    if cfg.env_values is not None:
        need(len(cfg.env_values) >= 1, "env_values must hold at least one value")
        need(all(math.isfinite(v) for v in cfg.env_values), "env_values must be finite numbers")
        # they enter training as float32, as payoffs do (envs.matrix refuses larger payoffs too)
        need(all(abs(v) <= FLOAT32_MAX for v in cfg.env_values),
             f"env_values must be at most {FLOAT32_MAX:.3g} in size (they are float32 in training)")
    for key in ("n_envs", "batch_size", "buffer_size", "target_update_interval", "agent.hidden",
                "qtran.hidden", "qmix.embed", "qmix.hypernet_hidden", "eval.episodes", "qplex.hidden", "qplex.heads",
                "wqmix.central_hidden"):
        value = OmegaConf.select(cfg, key)
        need(value >= 1, f"{key} must be at least 1, got {value}")
    need(cfg.checkpoint.every >= 0, f"checkpoint.every must be non-negative, got {cfg.checkpoint.every}")
    need(cfg.checkpoint.keep >= 1, f"checkpoint.keep must be at least 1, got {cfg.checkpoint.keep}")
    need(cfg.warmup_steps >= 0, f"warmup_steps must be non-negative, got {cfg.warmup_steps}")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"lr must be positive, got {cfg.lr}")
    need(cfg.adam_eps > 0, f"adam_eps must be positive, got {cfg.adam_eps}")
    need(0.0 <= cfg.gamma <= 1.0, f"gamma must be in [0, 1], got {cfg.gamma}")
    need(cfg.grad_clip >= 0, f"grad_clip must be non-negative, got {cfg.grad_clip}")
    need(cfg.updates_per_step > 0, f"updates_per_step must be positive, got {cfg.updates_per_step}")
    for key in ("eps.start", "eps.end"):
        value = OmegaConf.select(cfg, key)
        need(0.0 <= value <= 1.0, f"{key} must be in [0, 1], got {value}")
    if cfg.eps.anneal_steps is not None:
        need(cfg.eps.anneal_steps >= 0, f"eps.anneal_steps must be non-negative, got {cfg.eps.anneal_steps}")
    if cfg.eval.interval is not None:
        need(cfg.eval.interval >= 1, f"eval.interval must be at least 1, got {cfg.eval.interval}")
    need(cfg.qtran.pooling in ("sum", "mean"), f"qtran.pooling must be sum or mean, got {cfg.qtran.pooling!r}")
    need(cfg.agent.init in AGENT_INITS, f"agent.init must be {_choices(AGENT_INITS)}, got {cfg.agent.init!r}")
    need(cfg.agent.head in AGENT_HEADS, f"agent.head must be {_choices(AGENT_HEADS)}, got {cfg.agent.head!r}")
    need(cfg.time_limit in ("cut", "terminal"), f"time_limit must be cut or terminal, got {cfg.time_limit!r}")
    need(cfg.optimizer in ("adam", "radam"), f"optimizer must be adam or radam, got {cfg.optimizer!r}")
    need(cfg.lr_schedule in ("constant", "linear"),
         f"lr_schedule must be constant or linear, got {cfg.lr_schedule!r}")
    if cfg.qmix.init_scale is not None:
        need(cfg.qmix.init_scale > 0, f"qmix.init_scale must be positive, got {cfg.qmix.init_scale}")
    need(cfg.qtran.td_target in ("paper", "code"),
         f"qtran.td_target must be paper or code, got {cfg.qtran.td_target!r}")
    need(cfg.qtran.lambda_opt >= 0 and cfg.qtran.lambda_nopt >= 0, "qtran lambdas must be non-negative")
    need(0.0 < cfg.wqmix.alpha <= 1.0, f"wqmix.alpha must be in (0, 1], got {cfg.wqmix.alpha}")
    need(cfg.qmix.hypernet_layers in (1, 2), f"qmix.hypernet_layers must be 1 or 2, got {cfg.qmix.hypernet_layers}")
    need(cfg.qtran.f_r in F_R_FORMS, f"qtran.f_r must be {_choices(F_R_FORMS)}, got {cfg.qtran.f_r!r}")
    need(cfg.qmix.b1 in B1_PLACES, f"qmix.b1 must be {_choices(B1_PLACES)}, got {cfg.qmix.b1!r}")
    for key in ("qtran.init", "qmix.init"):
        value = OmegaConf.select(cfg, key)
        need(value in JOINT_INITS, f"{key} must be {_choices(JOINT_INITS)}, got {value!r}")
    need(cfg.qmix.init == "default" or cfg.qmix.init_scale is None,
         "qmix.init=code and qmix.init_scale both set the mixer's kernels; give one of them")


_choices = or_list  # 'a, b or c'


def anneal_steps(cfg: DictConfig) -> int:
    return int(0.45 * cfg.steps) if cfg.eps.anneal_steps is None else int(cfg.eps.anneal_steps)


def eval_interval(cfg: DictConfig) -> int:
    return max(1, cfg.steps // 20) if cfg.eval.interval is None else int(cfg.eval.interval)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)
