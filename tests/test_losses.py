"""Each loss against values worked out by hand on tiny inputs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import Batch, make_algorithm
from qtran.algorithms.base import td_target
from qtran.algorithms.qtran_alt import nopt_min_loss, opt_loss_all_heads
from qtran.algorithms.qtran_base import factorisation_losses
from qtran.config import make_config
from qtran.envs.matrix import make_matrix_game

Q = jnp.array([[[1.0, 2.0], [0.0, 3.0]]])  # one sample, agent 0: [1, 2], agent 1: [0, 3]
ACTIONS = jnp.array([[0, 1]])
AVAIL = jnp.ones((1, 2, 2), bool)


def test_qtran_base_factorisation_losses_by_hand():
    # Q'(u) = 1 + 3 = 4, Q'(u_bar) = 2 + 3 = 5, Q_jt(u) = 5, Q_jt(u_bar) = 4, V = 0.5
    l_opt, l_nopt = factorisation_losses(Q, ACTIONS, AVAIL, jnp.array([5.0]), jnp.array([4.0]), jnp.array([0.5]))
    assert float(l_opt[0]) == pytest.approx((5 - 4 + 0.5) ** 2)
    assert float(l_nopt[0]) == pytest.approx((4 - 5 + 0.5) ** 2)
    # (4b) satisfied: Q' - Q_jt + V >= 0 gives no L_nopt
    _, l_nopt = factorisation_losses(Q, ACTIONS, AVAIL, jnp.array([3.0]), jnp.array([4.0]), jnp.array([0.5]))
    assert float(l_nopt[0]) == 0.0


def test_qtran_alt_nopt_min_by_hand():
    # head 0 row: Q_jt(., u_2 = 1) = [4, 1]; head 1 row: Q_jt(u_1 = 0, .) = [2, 4]; V = 0.2
    rows = jnp.array([[[4.0, 1.0], [2.0, 4.0]]])
    v = jnp.array([0.2])
    # agent 0: Q'(a, 1) = [4, 5], D = [0.2, 4.2] -> min 0.2
    # agent 1: Q'(0, a) = [1, 4], D = [-0.8, 0.2] -> min -0.8
    assert float(nopt_min_loss(Q, ACTIONS, AVAIL, rows, v)[0]) == pytest.approx((0.2**2 + 0.8**2) / 2)
    # agent 1's action 0 unavailable: its min is taken over action 1 only -> 0.2
    avail = AVAIL.at[0, 1, 0].set(False)
    assert float(nopt_min_loss(Q, ACTIONS, avail, rows, v)[0]) == pytest.approx((0.2**2 + 0.2**2) / 2)


def test_qtran_alt_opt_all_heads_by_hand():
    # u_bar = (1, 1), Q'(u_bar) = 5; head 0 row at u_2 = 1: [4, 3.5] -> 3.5; head 1 row at u_1 = 1: [0, 3] -> 3
    rows = jnp.array([[[4.0, 3.5], [0.0, 3.0]]])
    got = float(opt_loss_all_heads(Q, AVAIL, rows, jnp.array([0.2]))[0])
    assert got == pytest.approx(((5 - 3.5 + 0.2) ** 2 + (5 - 3 + 0.2) ** 2) / 2)


def test_td_target_by_hand():
    batch = Batch(obs=None, state=None, avail=None, actions=None, reward=jnp.array([[1.0, 1.0]]),
                  terminated=jnp.array([[False, True]]), mask=None)
    y = td_target(batch, 0.9, True, lambda: jnp.array([[2.0, 2.0]]))
    np.testing.assert_allclose(y, [[1.0 + 0.9 * 2.0, 1.0]])
    y = td_target(batch, 0.9, False, lambda: 1 / 0)  # one-step game: target never evaluated
    np.testing.assert_allclose(y, [[1.0, 1.0]])


# ---- whole losses: the trainer's loss equals the same formula assembled by hand -------------

def _setup(algo, **over):
    extra = [f"{k}={v}" for k, v in over.items()]
    cfg = make_config([f"algo={algo}", "gamma=0.9"] + extra)
    payoff = np.arange(9, dtype=float).reshape(3, 3) - 4
    # A multi-step variant of the game, so the bootstrapped target path is exercised.
    env = dataclasses.replace(make_matrix_game(payoff), one_step=False)
    alg = make_algorithm(cfg, env)
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    params = {"agent": alg.agents.init(k1), "mixer": alg.init_mixer(k2)}
    target = {"agent": alg.agents.init(k3), "mixer": alg.init_mixer(k4)}
    obs = jax.random.normal(jax.random.PRNGKey(5), (2, 2, 2, 1))  # B=2, T+1=2, N=2, D=1
    batch = Batch(obs=obs, state=jax.random.normal(jax.random.PRNGKey(6), (2, 2, 1)),
                  avail=jnp.ones((2, 2, 2, 3), bool), actions=jnp.array([[[0, 2]], [[1, 1]]]),
                  reward=jnp.array([[1.0], [-2.0]]), terminated=jnp.array([[False], [True]]),
                  mask=jnp.ones((2, 1), bool))
    return cfg, alg, params, target, batch


def _per_sample(alg, params, target, batch, b):
    """Network outputs for sample b, computed one sample at a time."""
    q, _ = alg.agents.apply(params["agent"], batch.obs[b, 0])
    tq_next, _ = alg.agents.apply(target["agent"], batch.obs[b, 1])
    u = batch.actions[b, 0]
    u_next = jnp.argmax(tq_next, -1)
    keep = 0.9 * (1 - float(batch.terminated[b, 0]))
    return q, tq_next, u, u_next, keep, float(batch.reward[b, 0])


@pytest.mark.parametrize("algo", ["vdn", "iql"])
def test_vdn_and_iql_losses(algo):
    cfg, alg, params, target, batch = _setup(algo)
    want = []
    for b in range(2):
        q, tq, u, un, keep, r = _per_sample(alg, params, target, batch, b)
        q_u, tq_un = q[jnp.arange(2), u], tq[jnp.arange(2), un]
        if algo == "vdn":
            want.append((q_u.sum() - (r + keep * tq_un.sum())) ** 2)
        else:
            want.append(((q_u - (r + keep * tq_un)) ** 2).mean())
    got, _ = alg.loss(params, target, batch)
    assert float(got) == pytest.approx(float(np.mean(want)), rel=1e-5)


def test_qmix_loss():
    cfg, alg, params, target, batch = _setup("qmix")
    want = []
    for b in range(2):
        q, tq, u, un, keep, r = _per_sample(alg, params, target, batch, b)
        q_tot = alg.joint_q(params, batch.obs[b, 0], batch.state[b, 0], u[None])[0]
        q_next = alg.joint_q(target, batch.obs[b, 1], batch.state[b, 1], un[None])[0]
        want.append((q_tot - (r + keep * q_next)) ** 2)
    got, _ = alg.loss(params, target, batch)
    assert float(got) == pytest.approx(float(np.mean(want)), rel=1e-5)


def test_qmix_is_monotonic_in_every_agent_value():
    cfg, alg, params, _, batch = _setup("qmix")
    qs = jax.random.normal(jax.random.PRNGKey(0), (64, 2)) * 5
    states = jax.random.normal(jax.random.PRNGKey(1), (64, 1)) * 3
    from qtran.algorithms.qmix import QMixer

    mixer = QMixer(2, cfg.qmix.embed, cfg.qmix.hypernet_layers, cfg.qmix.hypernet_hidden)
    grads = jax.vmap(jax.grad(lambda q, s: mixer.apply(params["mixer"], q, s)))(qs, states)
    assert float(grads.min()) >= 0.0


@pytest.mark.parametrize("td_target_kind", ["paper", "code"])
def test_qtran_base_loss(td_target_kind):
    cfg, alg, params, target, batch = _setup("qtran-base", **{"qtran.td_target": td_target_kind,
                                                              "qtran.lambda_nopt": 0.7})
    td, opt, nopt = [], [], []
    for b in range(2):
        q, tq, u, un, keep, r = _per_sample(alg, params, target, batch, b)
        joint = lambda p, t, a: alg.joint_q(p, batch.obs[b, t], batch.state[b, t], a[None])[0]  # noqa: E731
        v = alg.state_value(params, batch.obs[b, 0], batch.state[b, 0])
        nxt = joint(target, 1, un) if td_target_kind == "paper" else tq.max(-1).sum()
        td.append((joint(params, 0, u) - (r + keep * nxt)) ** 2)
        u_bar = jnp.argmax(q, -1)
        opt.append((q.max(-1).sum() - joint(params, 0, u_bar) + v) ** 2)
        nopt.append(min(float(q[jnp.arange(2), u].sum() - joint(params, 0, u) + v), 0.0) ** 2)
    got, m = alg.loss(params, target, batch)
    assert float(m["loss_td"]) == pytest.approx(float(np.mean(td)), rel=1e-5)
    assert float(m["loss_opt"]) == pytest.approx(float(np.mean(opt)), rel=1e-5)
    assert float(m["loss_nopt"]) == pytest.approx(float(np.mean(nopt)), rel=1e-5, abs=1e-7)
    assert float(got) == pytest.approx(float(np.mean(td) + np.mean(opt) + 0.7 * np.mean(nopt)), rel=1e-5)


def test_qtran_alt_loss():
    cfg, alg, params, target, batch = _setup("qtran-alt")
    rows_fn = alg.extras["counterfactual_q"]
    td, opt, nopt = [], [], []
    for b in range(2):
        q, tq, u, un, keep, r = _per_sample(alg, params, target, batch, b)
        _, trunk = alg.agents.apply(params["agent"], batch.obs[b, 0])
        _, ttrunk = alg.agents.apply(target["agent"], batch.obs[b, 1])
        v = alg.state_value(params, batch.obs[b, 0], batch.state[b, 0])
        rows = rows_fn(params["mixer"], trunk, u)  # [N, U]
        y = r + keep * rows_fn(target["mixer"], ttrunk, un)[jnp.arange(2), un]
        td.append(((rows[jnp.arange(2), u] - y) ** 2).mean())
        u_bar = jnp.argmax(q, -1)
        rows_bar = rows_fn(params["mixer"], trunk, u_bar)
        opt.append(((q.max(-1).sum() - rows_bar[jnp.arange(2), u_bar] + v) ** 2).mean())
        mins = []
        for i in range(2):
            others = q[1 - i, u[1 - i]]
            mins.append(min(float(q[i, a] + others - rows[i, a] + v) for a in range(3)))
        nopt.append(np.mean(np.square(mins)))
    _, m = alg.loss(params, target, batch)
    assert float(m["loss_td"]) == pytest.approx(float(np.mean(td)), rel=1e-5)
    assert float(m["loss_opt"]) == pytest.approx(float(np.mean(opt)), rel=1e-5)
    assert float(m["loss_nopt"]) == pytest.approx(float(np.mean(nopt)), rel=1e-5)


@pytest.mark.parametrize("algo", ["qtran-base", "qtran-alt"])
def test_factorisation_losses_do_not_move_q_jt(algo):
    """Q_hat is a stop-gradient: the joint network's own weights learn from L_td only."""
    _, alg, params, target, batch = _setup(algo)
    _, alg_td_only, _, _, _ = _setup(algo, **{"qtran.lambda_opt": 0, "qtran.lambda_nopt": 0})
    head = "f_r" if algo == "qtran-base" else "f_alt"
    g_full = jax.grad(lambda p: alg.loss(p, target, batch)[0])(params)["mixer"][head]
    g_td = jax.grad(lambda p: alg_td_only.loss(p, target, batch)[0])(params)["mixer"][head]
    for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_td)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # ... while the agents do receive the factorisation gradients
    g_agent_full = jax.grad(lambda p: alg.loss(p, target, batch)[0])(params)["agent"]
    g_agent_td = jax.grad(lambda p: alg_td_only.loss(p, target, batch)[0])(params)["agent"]
    diff = sum(float(jnp.abs(a - b).sum()) for a, b in zip(jax.tree.leaves(g_agent_full), jax.tree.leaves(g_agent_td)))
    assert diff > 1e-6


def test_v_net_switch_off_gives_zero_v():
    _, alg, params, _, batch = _setup("qtran-base", **{"qtran.v_net": "false"})
    assert "f_v" not in params["mixer"]
    assert float(alg.state_value(params, batch.obs[0, 0], batch.state[0, 0])) == 0.0
