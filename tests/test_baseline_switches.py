"""The switches that set up JaxMARL's Q-learning baselines' choices (their qmix_rnn.py): RAdam,
a linearly decaying learning rate, orthogonal kernels, a linear Q head, a small mixer init."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qtran.algorithms import Batch, make_algorithm
from qtran.algorithms.qmix import QMixer
from qtran.config import make_config
from qtran.envs import make_env
from qtran.errors import UserError
from qtran.networks import Agents
from qtran.replay import time_limit_terminal
from qtran.run import fit
from qtran.train import Schedule, learning_rate, make_optimizer


def test_linear_schedule_falls_from_lr_to_zero_over_the_updates():
    cfg = make_config(["lr=0.004", "lr_schedule=linear"])
    lr = learning_rate(cfg, 8)
    assert [float(lr(k)) for k in (0, 2, 4, 8, 20)] == pytest.approx([0.004, 0.003, 0.002, 0.0, 0.0])
    assert learning_rate(make_config(["lr=0.004"]), 8) == 0.004


def test_schedule_counts_every_gradient_update_of_the_run():
    # 300 steps of a one-step game with updates_per_step=1 and 64 warm-up steps: iterations
    # 64..299 update once each. The count must equal what the trainer actually did.
    short = ["steps=300", "warmup_steps=64", "eval.interval=100", "progress=false"]
    cfg = make_config(short)
    assert Schedule.from_config(cfg, make_env(cfg.env)).total_updates == 300 - 64
    state, _ = fit(short + ["lr_schedule=linear"], write=False)
    counts = [int(np.ravel(c)[0]) for _, c in optax.tree_utils.tree_get_all_with_path(state.opt_state, "count")]
    assert counts and set(counts) == {300 - 64}  # Adam's step count and the schedule's


def test_radam_updates_like_optax_radam_after_the_clip():
    cfg = make_config(["optimizer=radam", "lr=0.01", "grad_clip=1.0"])
    params = {"w": jnp.arange(3.0)}
    grads = {"w": jnp.array([3.0, 0.0, 4.0])}  # norm 5: clipped to 1
    ours = make_optimizer(cfg)
    theirs = optax.radam(0.01)
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(8):  # RAdam's first steps differ from its later ones (the rectification)
        u1, s1 = ours.update(grads, s1, params)
        u2, s2 = theirs.update(jax.tree.map(lambda g: g / 5.0, grads), s2, params)
        np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)


@pytest.mark.parametrize("recurrent", [False, True])
def test_linear_head_maps_the_trunk_straight_to_q(recurrent):
    agents = Agents(2, 5, 3, 16, shared=False, recurrent=recurrent, head="linear")
    params = agents.init(jax.random.PRNGKey(0))
    layers = params["params"]
    dense = sorted(k for k in layers if k.startswith("Dense"))
    assert dense == (["Dense_0", "Dense_1"] if recurrent else ["Dense_0", "Dense_1", "Dense_2"])  # one fewer
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 3))
    q, trunk = agents.apply(params, obs)
    head = layers["Dense_1"] if recurrent else layers["Dense_2"]  # the last layer in each net
    for k in range(2):  # agent k's own parameters on agent k's rows
        by_hand = trunk[:, k] @ head["kernel"][k] + head["bias"][k]
        np.testing.assert_allclose(q[:, k], by_hand, rtol=1e-5, atol=1e-6)


def test_orthogonal_agent_kernels_have_orthonormal_columns():
    agents = Agents(2, 5, 64, 32, shared=True, init="orthogonal")
    kernel = agents.init(jax.random.PRNGKey(0))["params"]["Dense_0"]["kernel"]  # 66 x 32
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(32), atol=1e-5)


def test_mixer_init_scale_gives_orthogonal_kernels_of_that_gain_and_a_small_q_tot():
    state, qs = jnp.ones((6,)), jnp.array([3.0, -2.0, 1.0])
    small = QMixer(3, 8, 2, 16, init_scale=0.001)
    params = small.init(jax.random.PRNGKey(0), qs, state)
    kernels = [x for path, x in jax.tree_util.tree_leaves_with_path(params) if "kernel" in str(path[-1])]
    assert len(kernels) == 7  # w1, w2 and v (two layers each), b1
    for kernel in kernels:
        singular = np.linalg.svd(np.asarray(kernel), compute_uv=False)
        np.testing.assert_allclose(singular, 0.001, rtol=1e-4)
    assert abs(float(small.apply(params, qs, state))) < 1e-4
    default = QMixer(3, 8, 2, 16)
    assert abs(float(default.apply(default.init(jax.random.PRNGKey(0), qs, state), qs, state))) > 1e-2


@pytest.mark.parametrize("bad, message", [
    ("optimizer=sgd", "optimizer must be adam or radam"),
    ("lr_schedule=cosine", "lr_schedule must be constant or linear"),
    ("agent.head=deep", "agent.head must be mlp or linear"),
    ("qmix.init_scale=0", "qmix.init_scale must be positive"),
    ("time_limit=never", "time_limit must be cut or terminal"),
])
def test_bad_switch_values_are_one_line_errors(bad, message):
    with pytest.raises(UserError, match=message):
        make_config([bad])


JAXMARL_STYLE = ["algo=qmix", "env=predator_prey", "agent.recurrent=true", "agent.head=linear",
                 "agent.init=orthogonal", "qmix.init_scale=0.001", "optimizer=radam", "lr_schedule=linear",
                 "time_limit=terminal"]


def test_all_switches_together_train_qmix_with_a_gru():
    cfg = make_config(JAXMARL_STYLE)
    algo = make_algorithm(cfg, make_env(cfg.env))
    assert "Dense_2" not in algo.agents.init(jax.random.PRNGKey(0))["params"]
    state, summary = fit(JAXMARL_STYLE + ["steps=400", "warmup_steps=200", "env.episode_limit=20",
                                          "batch_size=4", "eval.interval=200", "progress=false"], write=False)
    assert len(summary["eval_curve"]["returns"]) == 3
    assert all(np.isfinite(r).all() for r in summary["eval_curve"]["returns"])
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def _episodes(terminated, mask):
    t = len(terminated[0])
    zeros = jnp.zeros((len(terminated), t))
    return Batch(obs=zeros, state=zeros, avail=zeros, actions=zeros, reward=zeros,
                 terminated=jnp.array(terminated), mask=jnp.array(mask))


def test_time_limit_terminal_marks_only_a_step_taken_at_the_limit():
    # Episode 0 ran to the 4-step limit; episode 1 ended by itself at its third step.
    episodes = _episodes([[0, 0, 0, 0], [0, 0, 1, 0]], [[1, 1, 1, 1], [1, 1, 1, 0]])
    episodes = episodes._replace(terminated=episodes.terminated.astype(bool), mask=episodes.mask.astype(bool))
    out = time_limit_terminal(episodes)
    np.testing.assert_array_equal(out.terminated, [[0, 0, 0, 1], [0, 0, 1, 0]])


@pytest.mark.parametrize("mode, expected", [("cut", False), ("terminal", True)])
def test_time_limit_switch_reaches_replay(mode, expected):
    # Predator-prey never terminates by itself: every stored episode runs to the limit.
    state, _ = fit(["algo=vdn", "env=predator_prey", "env.episode_limit=5", "steps=50", "warmup_steps=50",
                    "eval.interval=50", "progress=false", f"time_limit={mode}"], write=False)
    data, size = state.buffer.data, int(state.buffer.size[0])
    assert size == 10
    assert bool(data.terminated[0, :size, -1].all()) is expected
    assert not bool(data.terminated[0, :size, :-1].any())
