"""`compute_cuts`: the faster loss paths give the same loss and the same gradients as the plain
per-sample path (float32 rounding apart), for every algorithm, on games that no preset fixes.

The cuts: single-state one-step games compute each distinct input once per update (agents,
h_V, V_jt, h_Q per (agent, action), QMIX's hypernetworks) and gather rows per sample; h_Q's
first layer is split into a trunk part and an action row everywhere (predator-prey too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import ALGORITHMS, make_algorithm
from qtran.algorithms.base import Batch, single_state_cuts
from qtran.config import make_config
from qtran.envs import make_env
from qtran.networks import HiddenQ, hidden_q_at, hidden_q_table, hidden_q_trunk_part


def random_payoff_file(tmp_path, shape, seed):
    path = tmp_path / f"payoff_{seed}.npy"
    np.save(path, np.random.default_rng(seed).normal(size=shape).astype(np.float32))
    return str(path)


def one_state_batch(env, key, batch_size=16):
    """A replay-like batch of a single-state one-step game: the one observation and state in
    every sample, random available actions, random rewards, a mask that is not all ones."""
    obs, state = env.reset(jax.random.PRNGKey(0))
    avail = env.avail_actions(state)
    k_act, k_rew, k_mask = jax.random.split(key, 3)
    logits = jnp.where(avail, 0.0, -jnp.inf)
    actions = jax.random.categorical(k_act, logits, shape=(batch_size, 1, env.n_agents))
    mask = jax.random.uniform(k_mask, (batch_size, 1)) < 0.8
    mask = mask.at[0].set(True)
    tile = lambda x: jnp.broadcast_to(x, (batch_size, 2) + x.shape)  # noqa: E731  [B, T+1, ...]
    return Batch(obs=tile(obs), state=tile(env.global_state(state)), avail=tile(avail),
                 actions=actions.astype(jnp.int32), reward=jax.random.normal(k_rew, (batch_size, 1)),
                 terminated=jnp.ones((batch_size, 1), bool), mask=mask)


def loss_and_grads(overrides, batch_of, seed=0, jitter=0.3):
    """(loss, metrics, grads) of the algorithm with compute_cuts on and off, same parameters
    (the initial ones plus noise, so no unit sits at an untypical zero) and the same batch."""
    results = []
    for cuts in ("true", "false"):
        cfg = make_config(list(overrides) + [f"compute_cuts={cuts}"])
        env = make_env(cfg.env)
        algo = make_algorithm(cfg, env)
        key = jax.random.PRNGKey(seed)
        params = {"agent": algo.agents.init(key), "mixer": algo.init_mixer(jax.random.fold_in(key, 1))}
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.fold_in(key, 2), len(leaves))
        params = jax.tree.unflatten(tree, [x + jitter * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
        target = jax.tree.map(lambda x: 0.9 * x, params)
        batch = batch_of(env, jax.random.fold_in(key, 3))
        (loss, metrics), grads = jax.jit(jax.value_and_grad(algo.loss, has_aux=True))(params, target, batch)
        results.append((cfg, env, loss, metrics, grads))
    return results


def assert_same(results, rtol=2e-4, atol=2e-5):
    (_, _, loss_a, met_a, grad_a), (_, _, loss_b, met_b, grad_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=rtol, atol=atol)
    for name in met_a:
        np.testing.assert_allclose(met_a[name], met_b[name], rtol=rtol, atol=atol, err_msg=name)
    flat_a = jax.tree_util.tree_leaves_with_path(grad_a)
    flat_b = dict(jax.tree_util.tree_leaves_with_path(grad_b))
    assert len(flat_a) == len(flat_b)
    for path, g in flat_a:
        scale = float(jnp.max(jnp.abs(flat_b[path]))) + 1e-6
        np.testing.assert_allclose(g, flat_b[path], rtol=rtol, atol=atol * max(scale, 1.0),
                                   err_msg=jax.tree_util.keystr(path))


SINGLE_STATE_GAMES = {
    "table1": ["env=matrix", "env.payoff=table1"],
    "gs_fixed_s": ["env=gaussian_squeeze", "env.s_seed=3"],
}
SWITCHES = {
    "paper": [],
    "code_switches": ["qtran.v_net=false", "qtran.pooling=mean", "qtran.td_target=code", "agent.shared=false",
                      "qtran.lambda_opt=0.3", "qtran.lambda_nopt=2.5", "qmix.hypernet_layers=1"],
}


# Each case compiles two losses and their gradients (seconds each on 2 cores): the fast suite
# keeps every algorithm on Table 1 with the released code's switches and the QTRAN variants
# on Gaussian squeeze; the rest of the grid is marked slow.
FAST = {("table1", "code_switches", a) for a in ALGORITHMS} | {("gs_fixed_s", "paper", "qtran-alt")}
GRID = [pytest.param(g, s, a, marks=() if (g, s, a) in FAST else pytest.mark.slow)
        for g in SINGLE_STATE_GAMES for s in SWITCHES for a in ALGORITHMS]


@pytest.mark.parametrize("game, switches, algo", GRID)
def test_single_state_cuts_same_loss_and_gradients(game, switches, algo):
    overrides = SINGLE_STATE_GAMES[game] + SWITCHES[switches] + [f"algo={algo}"]
    results = loss_and_grads(overrides, one_state_batch)
    cfg, env = results[0][:2]
    assert single_state_cuts(cfg, env) and not single_state_cuts(*results[1][:2])
    assert_same(results)


# CW-QMIX is fast here because this is where its Q-hat*(u_hat) row is appended to the
# per-sample rows (64 joint actions, 16 samples); on Table 1 it is gathered from the table.
@pytest.mark.parametrize("algo", [a if a in ("qtran-base", "qtran-alt", "cw-qmix") else pytest.param(a, marks=pytest.mark.slow)
                                  for a in ALGORITHMS])
def test_three_agents_random_payoff(algo, tmp_path):
    """A 3-agent game no preset has: 4 x 4 x 4, Gaussian payoffs."""
    payoff = random_payoff_file(tmp_path, (4, 4, 4), seed=11)
    assert_same(loss_and_grads(["env=matrix", f"env.payoff={payoff}", f"algo={algo}"], one_state_batch, seed=5))


def predator_prey_batch(env, key, batch_size=8):
    """Real transitions of random play, so observations, availability and rewards are those of
    the grid world, with a mask that is not all ones."""
    from qtran.rollout import run_episode
    from qtran.networks import Agents

    agents = Agents(env.n_agents, env.n_actions, env.obs_dim, 8, True)
    params = agents.init(key)
    episodes, _, _ = jax.vmap(lambda k: run_episode(env, agents, params, k, 1.0))(jax.random.split(key, batch_size))
    t = 3  # one transition per episode, as replay samples them: T = 1
    take = lambda x, width: x[:, t:t + width]  # noqa: E731
    mask = take(episodes.mask, 1).at[1].set(False)
    return Batch(obs=take(episodes.obs, 2), state=take(episodes.state, 2), avail=take(episodes.avail, 2),
                 actions=take(episodes.actions, 1), reward=take(episodes.reward, 1),
                 terminated=take(episodes.terminated, 1), mask=mask)


PP = ["env=predator_prey", "env.agents=3", "env.prey=1", "env.grid=5"]


@pytest.mark.parametrize("algo", ["qtran-base", "qtran-alt"])
@pytest.mark.parametrize("switches", [[], pytest.param(["qtran.td_target=code", "qtran.pooling=mean", "double_q=true",
                                                         "qtran.v_net=false", "agent.shared=false"],
                                                        marks=pytest.mark.slow)])
def test_split_first_layer_on_predator_prey(algo, switches):
    """No single state here: only h_Q's split first layer differs, with bootstrapped targets."""
    results = loss_and_grads(PP + switches + [f"algo={algo}"], predator_prey_batch, seed=2)
    assert not single_state_cuts(*results[0][:2])
    assert_same(results)


def test_hidden_q_split_equals_module():
    """[trunk, onehot(u)] @ W == trunk @ W_t + W_a[u], for a single action and for the table."""
    n_actions, width = 5, 7
    module = HiddenQ(n_actions, 16)
    key = jax.random.PRNGKey(4)
    params = module.init(key, jnp.zeros((width,)), jnp.zeros((), jnp.int32))
    trunk = jax.random.normal(key, (6, 3, width))
    actions = jax.random.randint(jax.random.fold_in(key, 1), (6, 3), 0, n_actions)
    part = hidden_q_trunk_part(params, trunk)
    np.testing.assert_allclose(hidden_q_at(params, part, actions, n_actions), module.apply(params, trunk, actions),
                               rtol=1e-5, atol=1e-5)
    table = hidden_q_table(params, part, n_actions)  # [6, 3, U, F]
    for u in range(n_actions):
        np.testing.assert_allclose(table[..., u, :], module.apply(params, trunk, jnp.full((6, 3), u)),
                                   rtol=1e-5, atol=1e-5)


def test_cuts_apply_only_to_single_state_one_step_games():
    for overrides, expected in [(["env=matrix"], True), (["env=gaussian_squeeze", "env.s_seed=1"], True),
                                (["env=gaussian_squeeze", "env.s_seed=null"], False), (PP, False),
                                (["env=matrix", "compute_cuts=false"], False)]:
        cfg = make_config(overrides)
        assert single_state_cuts(cfg, make_env(cfg.env)) is expected, overrides


@pytest.mark.parametrize("n_agents, n_actions, batch", [(2, 3, 32), (3, 2, 5), (2, 21, 32)])
def test_per_joint_action_gathers_what_per_sample_computes(n_agents, n_actions, batch):
    """Rows computed once per joint action and gathered equal rows computed per sample, on both
    sides of the |U|^N < batch switch (2x3 with 32 samples gathers; 21x21 does not)."""
    from qtran.algorithms.base import per_joint_action

    weights = jax.random.normal(jax.random.PRNGKey(0), (n_agents, n_actions, 4))
    fn = lambda u: jnp.tanh(weights[jnp.arange(n_agents), u].sum(-2))  # noqa: E731  a joint feature
    actions = jax.random.randint(jax.random.PRNGKey(1), (batch, 1, n_agents), 0, n_actions)
    np.testing.assert_allclose(per_joint_action(fn, actions, n_actions), fn(actions), rtol=1e-6)


@pytest.mark.parametrize("n_agents, n_actions, batch", [(2, 3, 32), (3, 2, 5), (2, 21, 32)])
def test_per_joint_action_and_at_gives_both_from_one_call(n_agents, n_actions, batch):
    """The rows at the sampled actions and the row at one more joint action, from one call of
    fn (table gathered, or the extra row appended), equal fn at each, on both sides of the
    switch; fn runs exactly once."""
    from qtran.algorithms.base import per_joint_action_and_at

    weights = jax.random.normal(jax.random.PRNGKey(0), (n_agents, n_actions, 4))
    calls = []

    def fn(u):
        calls.append(u.shape)
        return jnp.tanh(weights[jnp.arange(n_agents), u].sum(-2))

    actions = jax.random.randint(jax.random.PRNGKey(1), (batch, 1, n_agents), 0, n_actions)
    extra = jax.random.randint(jax.random.PRNGKey(2), (n_agents,), 0, n_actions)
    rows, at_extra = per_joint_action_and_at(fn, actions, extra, n_actions)
    assert len(calls) == 1
    assert rows.shape == (batch, 1, 4) and at_extra.shape == (4,)
    np.testing.assert_allclose(rows, fn(actions), rtol=1e-6)
    np.testing.assert_allclose(at_extra, fn(extra), rtol=1e-6)
