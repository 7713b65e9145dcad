"""The GRU agent: hidden state reset exactly at episode starts, and the same agent and batch
ordering when acting (step by step) and when learning (unrolled over stored episodes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.envs.predator_prey import PredatorPreyConfig, make_predator_prey
from qtran.networks import Agents
from qtran.rollout import run_episode
from qtran.run import fit
from qtran.train import primitive_names


def _setup(shared):
    env = make_predator_prey(PredatorPreyConfig(agents=3, prey=1, grid=5, episode_limit=6))
    agents = Agents(env.n_agents, env.n_actions, env.obs_dim, hidden=16, shared=shared, recurrent=True)
    return env, agents, agents.init(jax.random.PRNGKey(0))


@pytest.mark.parametrize("shared", [True, False])
def test_acting_equals_learning_unroll_and_reset_is_at_the_first_step(shared):
    env, agents, params = _setup(shared)
    episode, _, q_acting = run_episode(env, agents, params, jax.random.PRNGKey(1), 0.5)
    obs = episode.obs[:-1]  # [T, N, D]
    # learning-time unroll over the stored episode reproduces every acting-time Q, agent by agent
    q_learning, _ = agents.unroll(params, episode.obs[None])
    np.testing.assert_allclose(q_learning[0, :-1], q_acting, rtol=1e-5, atol=1e-6)
    # step 0 sees a fresh hidden state ...
    np.testing.assert_allclose(q_acting[0], agents.apply(params, obs[0])[0], rtol=1e-5, atol=1e-6)
    # ... and later steps do not (the history is carried, not reset every step)
    fresh = jax.vmap(lambda o: agents.apply(params, o)[0])(obs[1:])
    assert not np.allclose(q_acting[1:], fresh, atol=1e-4)


def test_a_second_episode_starts_from_a_fresh_hidden_state():
    env, agents, params = _setup(True)
    ep1, _, _ = run_episode(env, agents, params, jax.random.PRNGKey(1), 1.0)
    ep2, _, q2 = run_episode(env, agents, params, jax.random.PRNGKey(2), 1.0)
    np.testing.assert_allclose(q2[0], agents.apply(params, ep2.obs[0])[0], rtol=1e-5, atol=1e-6)
    # carrying episode 1's final hidden state into episode 2 (a reset one step late) would differ
    carry = agents.initial_carry()
    for t in range(env.episode_limit):
        carry, _, _ = agents.step(params, carry, ep1.obs[t])
    _, q_late, _ = agents.step(params, carry, ep2.obs[0])
    assert not np.allclose(q_late, q2[0], atol=1e-4)


def test_unrolling_a_batch_keeps_episodes_apart():
    env, agents, params = _setup(True)
    eps = [run_episode(env, agents, params, jax.random.PRNGKey(k), 1.0)[0] for k in (3, 4)]
    batch_obs = jnp.stack([e.obs for e in eps])
    q_batch, trunk_batch = agents.unroll(params, batch_obs)
    for b, e in enumerate(eps):
        q_one, trunk_one = agents.unroll(params, e.obs[None])
        np.testing.assert_allclose(q_batch[b], q_one[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(trunk_batch[b], trunk_one[0], rtol=1e-5, atol=1e-6)
    # current / following are the unroll at tau and tau'
    q_cur, _ = agents.current(params, batch_obs)
    q_next, _ = agents.following(params, batch_obs)
    np.testing.assert_allclose(q_cur, q_batch[:, :-1])
    np.testing.assert_allclose(q_next, q_batch[:, 1:])


def test_gru_agent_trains_on_predator_prey():
    states, summary = fit(["algo=qtran-alt", "env=predator_prey", "env.episode_limit=10", "agent.recurrent=true",
                           "agent.hidden=16", "qtran.hidden=16", "steps=200", "warmup_steps=50", "batch_size=4",
                           "updates_per_step=0.1", "eval.interval=100", "eval.episodes=2", "progress=false"],
                          write=False)
    assert all(np.isfinite(summary["final_eval_return"]))
    assert summary["eval_curve"]["steps"] == [0, 100, 200]


def test_recurrent_qtran_base_initialises_several_runs_without_hanging():
    """Regression: a vmapped init of GRU agents (orthogonal init = batched QR) deadlocked XLA's
    CPU runtime for qtran-base with 2 runs. In a subprocess so a hang fails instead of blocking."""
    import os
    import subprocess
    import sys

    code = ("from qtran.config import make_config; from qtran.envs import make_env; "
            "from qtran.algorithms import make_algorithm; from qtran.train import Trainer; import jax; "
            "cfg = make_config(['algo=qtran-base', 'agent.recurrent=true', 'env=predator_prey', 'env.grid=4']); "
            "env = make_env(cfg.env); t = Trainer(cfg, env, make_algorithm(cfg, env)); "
            "s = jax.block_until_ready(t.init_runs([0, 1])); print(s.params['agent']['params'].keys())")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, JAX_PLATFORMS="cpu"),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def _count_scans(jaxpr) -> int:
    """scan primitives in a jaxpr, nested ones (inside jit, cond, ...) included."""
    return sum(name == "scan" for name in primitive_names(jaxpr))


@pytest.mark.parametrize("algo", ["vdn", "qmix", "qtran-base", "qtran-alt", "iql"])
def test_double_q_unrolls_the_online_gru_once_and_keeps_the_vdn_loss(algo):
    from qtran.algorithms import Batch, make_algorithm
    from qtran.config import make_config
    from qtran.envs import make_env

    cfg = make_config([f"algo={algo}", "env=predator_prey", "env.episode_limit=5", "agent.recurrent=true",
                       "agent.hidden=8", "qtran.hidden=8", "double_q=true", "gamma=0.9"])
    env = make_env(cfg.env)
    alg = make_algorithm(cfg, env)
    k = jax.random.split(jax.random.PRNGKey(3), 8)
    params = {"agent": alg.agents.init(k[0]), "mixer": alg.init_mixer(k[1])}
    target = {"agent": alg.agents.init(k[2]), "mixer": alg.init_mixer(k[3])}
    b, t, n = 4, 5, env.n_agents
    batch = Batch(obs=jax.random.normal(k[4], (b, t + 1, n, env.obs_dim)),
                  state=jax.random.normal(k[5], (b, t + 1, env.state_dim)),
                  avail=jnp.ones((b, t + 1, n, env.n_actions), bool),
                  actions=jax.random.randint(k[6], (b, t, n), 0, env.n_actions),
                  reward=jax.random.normal(k[7], (b, t)), terminated=jnp.zeros((b, t), bool),
                  mask=jnp.ones((b, t), bool))
    # One unroll of the online GRU (tau and tau' together) and one of the target GRU; a third
    # would be the online agents unrolled again just to pick u_bar'.
    assert _count_scans(jax.make_jaxpr(alg.loss)(params, target, batch).jaxpr) == 2
    if algo != "vdn":
        return
    # VDN's double-Q loss by hand from two full unrolls.
    def by_hand(p):
        q, _ = alg.agents.unroll(p["agent"], batch.obs)
        tq, _ = alg.agents.unroll(target["agent"], batch.obs)
        u_next = jnp.argmax(q[:, 1:], -1)
        y = batch.reward + 0.9 * jnp.take_along_axis(tq[:, 1:], u_next[..., None], -1)[..., 0].sum(-1)
        taken = jnp.take_along_axis(q[:, :-1], batch.actions[..., None], -1)[..., 0].sum(-1)
        return jnp.mean((taken - jax.lax.stop_gradient(y)) ** 2)

    np.testing.assert_allclose(alg.loss(params, target, batch)[0], by_hand(params), rtol=1e-5)
    grads, expected = jax.grad(lambda p: alg.loss(p, target, batch)[0])(params), jax.grad(by_hand)(params)
    for g, e in zip(jax.tree.leaves(grads["agent"]), jax.tree.leaves(expected["agent"])):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)
