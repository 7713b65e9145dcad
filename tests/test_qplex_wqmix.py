"""QPLEX, OW-QMIX and CW-QMIX: IGM by construction, the weighting functions on both sides of
their conditions, and each loss against the formula written out by hand from the parameter
dicts (plain matrix products, never the modules under test)."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import Batch, make_algorithm
from qtran.algorithms.qplex import mix
from qtran.algorithms.weighted_qmix import central_weights, optimistic_weights
from qtran.config import make_config
from qtran.envs.matrix import make_matrix_game
from qtran.run import fit
from test_regression_paths import _assert_trees_close, _mlp, agent_ref, qmix_ref

GAMMA = 0.9


def _jittered(tree, key, scale=0.3):
    """Every leaf moved by Gaussian noise, biases included (Flax starts them at 0)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _random_params(alg, seed):
    key = jax.random.PRNGKey(seed)
    params = {"agent": alg.agents.init(key), "mixer": alg.init_mixer(jax.random.fold_in(key, 1))}
    return _jittered(params, jax.random.fold_in(key, 2))


# ---- QPLEX --------------------------------------------------------------------------------

@pytest.mark.parametrize("n_agents, n_actions", [(2, 3), (3, 4), (4, 2), (2, 21)])
def test_qplex_greedy_joint_action_is_the_agents_greedy_actions(n_agents, n_actions):
    """IGM on random parameters (several seeds): argmax_u Q_tot(s, u) over the whole joint
    action space is the tuple of each agent's argmax Q_i, and Q_tot is strictly lower anywhere
    else."""
    env = make_matrix_game(np.random.default_rng(0).normal(size=(n_actions,) * n_agents))
    alg = make_algorithm(make_config(["algo=qplex", "agent.shared=false"]), env)
    obs, state = env.reset(jax.random.PRNGKey(0))
    joint = jnp.asarray(list(itertools.product(range(n_actions), repeat=n_agents)))

    @jax.jit
    def tables(params, gstate):
        return alg.joint_q(params, obs, gstate, joint), alg.agents.apply(params["agent"], obs)[0]

    for seed in range(4):
        # a state no game ships, so w_i, b_i and the attention see varied inputs across seeds
        q_tot, q_i = map(np.asarray, tables(_random_params(alg, seed), env.global_state(state) * (1.0 + seed)))
        greedy = tuple(int(a) for a in q_i.argmax(-1))
        best = int(q_tot.argmax())
        assert tuple(int(a) for a in joint[best]) == greedy, seed
        assert np.delete(q_tot, best).max() < q_tot[best]


def test_qplex_mix_by_hand():
    # V = [1, 2], A(u) = [0, -1], w = [2, 1], b = [0.5, -0.5]; one head, key 1,
    # gates phi = [0.5, 1], action gates = [1, 0.5] -> lambda = [0.5, 0.5]
    # Q_tot = (2*1 + 0.5) + (1*2 - 0.5) + 0.5*2*0 + 0.5*1*(-1) = 3.5
    transformed = (jnp.array([2.0, 1.0]), jnp.array([0.5, -0.5]), jnp.array([1.0]), jnp.array([[0.5, 1.0]]))
    got = mix(jnp.array([1.0, 2.0]), jnp.array([0.0, -1.0]), transformed, jnp.array([[1.0, 0.5]]))
    assert float(got) == pytest.approx(3.5)
    # two heads add up: a second head (key 2, phi 1, gates 1) adds 2 to each lambda -> 2.5, 2.5
    transformed = (transformed[0], transformed[1], jnp.array([1.0, 2.0]), jnp.array([[0.5, 1.0], [1.0, 1.0]]))
    got = mix(jnp.array([1.0, 2.0]), jnp.array([0.0, -1.0]), transformed, jnp.array([[1.0, 0.5], [1.0, 1.0]]))
    assert float(got) == pytest.approx(4.0 - 2.5)


def test_qplex_stop_gradient_keeps_the_value_and_moves_the_gradients_by_hand():
    # The hand example above: V = [1, 2], A = [0, -1], w = [2, 1], lambda = [0.5, 0.5].
    transformed = (jnp.array([2.0, 1.0]), jnp.array([0.5, -0.5]), jnp.array([1.0]), jnp.array([[0.5, 1.0]]))
    values, advantages, gates = jnp.array([1.0, 2.0]), jnp.array([0.0, -1.0]), jnp.array([[1.0, 0.5]])
    paper = mix(values, advantages, transformed, gates)
    code = mix(values, advantages, transformed, gates, stop_gradient=True)
    assert float(code) == pytest.approx(float(paper)) == pytest.approx(3.5)

    def grads(stop):
        return jax.grad(lambda v, a, g: mix(v, a, transformed, g, stop), argnums=(0, 1, 2))(values, advantages, gates)

    dv, da, dg = grads(False)  # paper: dQ/dV_i = w_i, dQ/dA_i = lambda_i w_i, dQ/dgate_i = key phi_i w_i A_i
    np.testing.assert_allclose(dv, [2.0, 1.0])
    np.testing.assert_allclose(da, [1.0, 0.5])
    np.testing.assert_allclose(dg, [[0.0, -1.0]])
    dv, da, dg = grads(True)  # the authors' code: dQ/dA_i = w_i (A only through Q_i(u_i)); gates as before
    np.testing.assert_allclose(dv, [2.0, 1.0])
    np.testing.assert_allclose(da, [2.0, 1.0])
    np.testing.assert_allclose(dg, [[0.0, -1.0]])
    # and w: paper dQ/dw_i = V_i + lambda_i A_i = [1, 1.5]; code: Q_i(u_i) = V_i + A_i = [1, 1]
    for stop, want in ((False, [1.0, 1.5]), (True, [1.0, 1.0])):
        dw = jax.grad(lambda w: mix(values, advantages, (w,) + transformed[1:], gates, stop))(transformed[0])
        np.testing.assert_allclose(dw, want)


def test_qplex_stop_gradient_loss_has_the_papers_value():
    cfg, alg, params, target, batch = _setup("qplex")
    _, alg_code, _, _, _ = _setup("qplex", **{"qplex.stop_gradient": "true"})
    assert float(alg_code.loss(params, target, batch)[0]) == pytest.approx(float(alg.loss(params, target, batch)[0]),
                                                                             rel=1e-5)
    g_paper = jax.grad(lambda p: alg.loss(p, target, batch)[0])(params)
    g_code = jax.grad(lambda p: alg_code.loss(p, target, batch)[0])(params)
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(g_paper["agent"]), jax.tree.leaves(g_code["agent"]))]
    assert any(moved)  # the agents learn along another direction


def _setup(algo, **over):
    """A multi-step 3x3 game (so the bootstrapped target is used), random parameters and
    target parameters, and a 2-sample batch with a terminal and a non-terminal step."""
    cfg = make_config([f"algo={algo}", f"gamma={GAMMA}"] + [f"{k}={v}" for k, v in over.items()])
    env = dataclasses.replace(make_matrix_game(np.arange(9.0).reshape(3, 3) - 4), one_step=False)
    alg = make_algorithm(cfg, env)
    params, target = _random_params(alg, 3), _random_params(alg, 4)
    batch = Batch(obs=jax.random.normal(jax.random.PRNGKey(5), (2, 2, 2, 1)),
                  state=jax.random.normal(jax.random.PRNGKey(6), (2, 2, 1)),
                  avail=jnp.ones((2, 2, 2, 3), bool), actions=jnp.array([[[0, 2]], [[1, 1]]]),
                  reward=jnp.array([[1.0], [-2.0]]), terminated=jnp.array([[False], [True]]),
                  mask=jnp.ones((2, 1), bool))
    return cfg, alg, params, target, batch


def _qplex_ref(cfg, mixer, q, state, u):
    """Q_tot(s, u) from the mixer's parameter dict and the agents' q[N, U]."""
    nets = mixer["params"]
    n, k = q.shape[0], cfg.qplex.heads
    v = q.max(-1)
    adv = q[jnp.arange(n), u] - v
    w = jnp.abs(_mlp(nets["weight_net"], state)) + 1e-10
    b = _mlp(nets["bias_net"], state)
    keys = jnp.abs(_mlp(nets["key_net"], state)) + 1e-10
    phi = jax.nn.sigmoid(_mlp(nets["agent_gate_net"], state)).reshape(k, n)
    x = jnp.concatenate([state, jax.nn.one_hot(u, q.shape[1]).ravel()])
    lam_k = jax.nn.sigmoid(_mlp(nets["action_gate_net"], x)).reshape(k, n)
    lam = (keys[:, None] * phi * lam_k).sum(0)
    return (w * v + b).sum() + (lam * w * adv).sum()


@pytest.mark.parametrize("double_q", ["false", "true"])
def test_qplex_loss_by_hand(double_q):
    cfg, alg, params, target, batch = _setup("qplex", double_q=double_q)
    want = []
    for b in range(2):
        q, _ = agent_ref(cfg, params["agent"], batch.obs[b, 0])
        q_next_target, _ = agent_ref(cfg, target["agent"], batch.obs[b, 1])
        q_next_online, _ = agent_ref(cfg, params["agent"], batch.obs[b, 1])
        u_next = jnp.argmax(q_next_online if double_q == "true" else q_next_target, -1)
        keep = GAMMA * (1.0 - float(batch.terminated[b, 0]))
        y = batch.reward[b, 0] + keep * _qplex_ref(cfg, target["mixer"], q_next_target, batch.state[b, 1], u_next)
        want.append((_qplex_ref(cfg, params["mixer"], q, batch.state[b, 0], batch.actions[b, 0]) - y) ** 2)
    got, _ = alg.loss(params, target, batch)
    assert float(got) == pytest.approx(float(np.mean(want)), rel=1e-5)


# ---- Weighted QMIX -------------------------------------------------------------------------

def test_optimistic_weights_on_both_sides():
    q_tot = jnp.array([1.0, 3.0, 2.0])
    y = jnp.array([2.0, 2.0, 2.0])
    # underestimate -> 1; overestimate -> alpha; equal is not an underestimate -> alpha
    np.testing.assert_allclose(optimistic_weights(q_tot, y, 0.1), [1.0, 0.1, 0.1])
    np.testing.assert_allclose(optimistic_weights(q_tot, y, 0.5), [1.0, 0.5, 0.5])


def test_central_weights_on_both_sides():
    is_greedy = jnp.array([True, True, False, False, False])
    y = jnp.array([0.0, 5.0, 5.0, 1.0, 3.0])
    central_at_greedy = jnp.array([3.0, 3.0, 3.0, 3.0, 3.0])
    # greedy -> 1 whatever y; not greedy: y above Q-hat*(s, u_hat) -> 1, at or below -> alpha
    np.testing.assert_allclose(central_weights(is_greedy, y, central_at_greedy, 0.1), [1, 1, 1, 0.1, 0.1])


def _central_ref(cfg, mixer, obs, state, u):
    """Q-hat*(s, u) written out: the central agents' utilities, then [s, q*_i(u_i)] through 3
    ReLU layers, plus V(s)."""
    util, _ = agent_ref(cfg, mixer["central_agent"], obs)
    nets = mixer["central"]["params"]
    x = jnp.concatenate([state, util[jnp.arange(util.shape[0]), u]])
    return _mlp(nets["MLP_0"], x)[0] + _mlp(nets["MLP_1"], state)[0]


@pytest.mark.parametrize("algo", ["ow-qmix", "cw-qmix"])
@pytest.mark.parametrize("alpha", [0.1, 0.6])
def test_weighted_qmix_loss_by_hand(algo, alpha):
    cfg, alg, params, target, batch = _setup(algo, **{"wqmix.alpha": alpha, "wqmix.central_hidden": 16})
    qmix_terms, central_terms, weights = [], [], []
    for b in range(2):
        obs, obs_next = batch.obs[b, 0], batch.obs[b, 1]
        q, _ = agent_ref(cfg, params["agent"], obs)
        q_next_target, _ = agent_ref(cfg, target["agent"], obs_next)
        u, u_next, u_hat = batch.actions[b, 0], jnp.argmax(q_next_target, -1), jnp.argmax(q, -1)
        keep = GAMMA * (1.0 - float(batch.terminated[b, 0]))
        y = batch.reward[b, 0] + keep * _central_ref(cfg, target["mixer"], obs_next, batch.state[b, 1], u_next)
        q_tot = qmix_ref(cfg, params["mixer"]["qmix"], q[jnp.arange(2), u], batch.state[b, 0])
        central = _central_ref(cfg, params["mixer"], obs, batch.state[b, 0], u)
        if algo == "ow-qmix":
            w = 1.0 if q_tot < y else alpha
        else:
            at_greedy = _central_ref(cfg, params["mixer"], obs, batch.state[b, 0], u_hat)
            w = 1.0 if bool(jnp.all(u == u_hat)) or y > at_greedy else alpha
        weights.append(w)
        qmix_terms.append(w * (q_tot - y) ** 2)
        central_terms.append((central - y) ** 2)
    got, metrics = alg.loss(params, target, batch)
    assert float(metrics["loss_td"]) == pytest.approx(float(np.mean(qmix_terms)), rel=1e-5)
    assert float(metrics["loss_central"]) == pytest.approx(float(np.mean(central_terms)), rel=1e-5)
    assert float(metrics["weight_mean"]) == pytest.approx(float(np.mean(weights)))
    assert float(got) == pytest.approx(float(np.mean(qmix_terms) + np.mean(central_terms)), rel=1e-5)


@pytest.mark.parametrize("algo", ["ow-qmix", "cw-qmix"])
def test_weighted_qmix_at_alpha_one_is_qmix_plus_central_loss(algo):
    """At alpha = 1 every weight is 1, whichever side of its condition a sample falls on, so the
    loss is QMIX's squared TD error (on the central target y) plus Q-hat*'s: its value and its
    gradients in every parameter (the central agents' and Q-hat*'s included) equal that sum
    written out from the parameter dicts, y held constant.

    That the weights are constants in the gradient is not shown here, nor can a gradient show
    it: w is a step function of Q_tot and y, whose derivative is zero wherever it is defined,
    with or without a stop-gradient."""
    cfg, alg, params, target, batch = _setup(algo, **{"wqmix.alpha": 1.0, "wqmix.central_hidden": 16})

    def qmix_plus_central(p):
        qmix_terms, central_terms = [], []
        for b in range(2):
            obs, obs_next, state = batch.obs[b, 0], batch.obs[b, 1], batch.state[b, 0]
            q, _ = agent_ref(cfg, p["agent"], obs)
            u, u_next = batch.actions[b, 0], jnp.argmax(agent_ref(cfg, target["agent"], obs_next)[0], -1)
            keep = GAMMA * (1.0 - float(batch.terminated[b, 0]))
            y = jax.lax.stop_gradient(batch.reward[b, 0] + keep * _central_ref(cfg, target["mixer"], obs_next,
                                                                               batch.state[b, 1], u_next))
            q_tot = qmix_ref(cfg, p["mixer"]["qmix"], q[jnp.arange(2), u], state)
            qmix_terms.append((q_tot - y) ** 2)
            central_terms.append((_central_ref(cfg, p["mixer"], obs, state, u) - y) ** 2)
        return jnp.mean(jnp.stack(qmix_terms)) + jnp.mean(jnp.stack(central_terms))

    want, want_grads = jax.value_and_grad(qmix_plus_central)(params)
    (got, metrics), grads = jax.value_and_grad(alg.loss, has_aux=True)(params, target, batch)
    assert float(metrics["weight_mean"]) == 1.0
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    _assert_trees_close(grads, want_grads)


# ---- every environment family: recurrent agents on predator-prey -----------------------------

@pytest.mark.slow  # about a minute each on the loaded 2-core machine
@pytest.mark.parametrize("algo", ["qplex", "ow-qmix", "cw-qmix"])
def test_recurrent_agents_train_on_predator_prey(algo):
    _, summary = fit([f"algo={algo}", "env=predator_prey", "env.episode_limit=10", "env.grid=5", "agent.recurrent=true",
                      "agent.hidden=16", "qplex.hidden=16", "wqmix.central_hidden=16", "qmix.embed=8",
                      "qmix.hypernet_hidden=16", "steps=200", "warmup_steps=50", "batch_size=4", "double_q=true",
                      "updates_per_step=0.1", "eval.interval=100", "eval.episodes=2", "progress=false"], write=False)
    assert all(np.isfinite(summary["final_eval_return"]))
    assert summary["eval_curve"]["steps"] == [0, 100, 200]


@pytest.mark.slow  # two trainings and a resume per algorithm
@pytest.mark.parametrize("algo", ["qplex", "cw-qmix"])
def test_resume_mid_run_equals_the_uninterrupted_run(algo, tmp_path):
    """The new parameter trees (CW-QMIX's nested Q_tot mixer, central agents and Q-hat*) go
    through checkpoints and an exact resume like every other algorithm's."""
    import shutil

    from qtran import checkpoint
    from qtran.run import resume
    from test_checkpoint import assert_same_results

    full = tmp_path / "full"
    fit([f"algo={algo}", "steps=600", "eval.interval=200", "warmup_steps=64", "seeds=2", "wqmix.central_hidden=16",
         "progress=false", "tensorboard=false", "checkpoint.keep=100", f"out={full}"])
    partial = tmp_path / "partial"
    shutil.copytree(full, partial)
    (partial / "summary.json").unlink()
    for chunk, path in checkpoint.list_checkpoints(partial / "checkpoints"):
        if chunk > 0:
            path.unlink()
    assert resume(partial)["resumed_from_chunk"] == 1
    assert_same_results(full, partial)
