"""Each loss against values worked out by hand: the loss pieces on numbers small enough to
check in a comment, and every whole loss against its formula evaluated sample by sample from
the parameter dicts (the networks written out as plain matrix products in
test_regression_paths; never the modules, joint_q, state_value or counterfactual head under
test), with QTRAN's lambdas other than 1."""

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
from test_regression_paths import (
    _action_sensitive, _randomise, agent_ref, alt_rows_ref, q_jt_base_ref, qmix_ref, v_ref,
)

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


# ---- whole losses: the trainer's loss against the formula, one sample at a time -------------

GAMMA = 0.9
LAM_OPT, LAM_NOPT = 0.4, 1.7  # not 1, so a dropped, squared or swapped lambda shows
N_AGENTS, N_ACTIONS = 2, 3


def _setup(algo, **over):
    """A multi-step variant of a 3x3 game (so the bootstrapped target is evaluated), random
    parameters and target parameters in every leaf (biases too), and a batch of 6 one-step
    samples, some terminal."""
    extra = [f"{k}={v}" for k, v in over.items()]
    cfg = make_config([f"algo={algo}", f"gamma={GAMMA}", "agent.hidden=8", "qtran.hidden=8", "qmix.embed=4",
                       "qmix.hypernet_hidden=8", f"qtran.lambda_opt={LAM_OPT}", f"qtran.lambda_nopt={LAM_NOPT}"]
                      + extra)
    payoff = np.arange(9, dtype=float).reshape(3, 3) - 4
    env = dataclasses.replace(make_matrix_game(payoff), one_step=False)
    alg = make_algorithm(cfg, env)
    shapes = jax.eval_shape(lambda k: {"agent": alg.agents.init(k), "mixer": alg.init_mixer(k)}, jax.random.PRNGKey(0))
    params, target = (_action_sensitive(_randomise(shapes, seed)) for seed in (1, 2))
    rng = np.random.default_rng(4)
    b = 6
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    batch = Batch(obs=f32(rng.standard_normal((b, 2, N_AGENTS, 1))), state=f32(rng.standard_normal((b, 2, 1))),
                  avail=jnp.ones((b, 2, N_AGENTS, N_ACTIONS), bool),
                  actions=jnp.asarray(rng.integers(0, N_ACTIONS, (b, 1, N_AGENTS)), jnp.int32),
                  reward=f32(2.0 * rng.standard_normal((b, 1))), terminated=jnp.asarray(np.arange(b)[:, None] % 3 == 0),
                  mask=jnp.ones((b, 1), bool))
    return cfg, alg, params, target, batch


def _np(x):
    return np.asarray(x, np.float64)


def _sample(cfg, params, target, batch, b):
    """Sample b: the agents' q[N, U] and trunk at tau, the target agents' tq and trunk at tau',
    the taken u, u_bar' (the target network's argmax: double_q is off), r and gamma (1 - terminal)."""
    q, trunk = agent_ref(cfg, params["agent"], batch.obs[b, 0])
    tq, ttrunk = agent_ref(cfg, target["agent"], batch.obs[b, 1])
    u = np.asarray(batch.actions[b, 0])
    return _np(q), trunk, _np(tq), ttrunk, u, _np(tq).argmax(-1), float(batch.reward[b, 0]), \
        GAMMA * (1.0 - float(batch.terminated[b, 0]))


def _at(table, actions):
    """table[i, actions[i]] for every agent i."""
    return table[np.arange(len(actions)), actions]


@pytest.mark.parametrize("algo", ["vdn", "iql"])
def test_vdn_and_iql_losses_by_hand(algo):
    cfg, alg, params, target, batch = _setup(algo)
    want = []
    for b in range(len(batch.reward)):
        q, _, tq, _, u, u_next, r, keep = _sample(cfg, params, target, batch, b)
        if algo == "vdn":  # (sum_i Q_i(u_i) - (r + gamma sum_i Q_i^-(u_bar'_i)))^2
            want.append((_at(q, u).sum() - (r + keep * _at(tq, u_next).sum())) ** 2)
        else:  # each agent its own TD error, averaged over agents
            want.append(np.mean((_at(q, u) - (r + keep * _at(tq, u_next))) ** 2))
    got, _ = alg.loss(params, target, batch)
    assert float(got) == pytest.approx(np.mean(want), rel=1e-5)


def test_qmix_loss_by_hand():
    cfg, alg, params, target, batch = _setup("qmix")
    want = []
    for b in range(len(batch.reward)):
        q, _, tq, _, u, u_next, r, keep = _sample(cfg, params, target, batch, b)
        q_tot = float(qmix_ref(cfg, params["mixer"], jnp.asarray(_at(q, u)), batch.state[b, 0]))
        q_next = float(qmix_ref(cfg, target["mixer"], jnp.asarray(_at(tq, u_next)), batch.state[b, 1]))
        want.append((q_tot - (r + keep * q_next)) ** 2)
    got, _ = alg.loss(params, target, batch)
    assert float(got) == pytest.approx(np.mean(want), rel=1e-5)


def test_qmix_is_monotonic_in_every_agent_value():
    cfg, alg, params, _, batch = _setup("qmix")
    qs = jax.random.normal(jax.random.PRNGKey(0), (64, 2)) * 5
    states = jax.random.normal(jax.random.PRNGKey(1), (64, 1)) * 3
    from qtran.algorithms.qmix import QMixer

    mixer = QMixer(2, cfg.qmix.embed, cfg.qmix.hypernet_layers, cfg.qmix.hypernet_hidden)
    grads = jax.vmap(jax.grad(lambda q, s: mixer.apply(params["mixer"], q, s)))(qs, states)
    assert float(grads.min()) >= 0.0


def _assert_qtran_terms(alg, params, target, batch, td, opt, nopt):
    """The loss's three terms and its total, lambdas included, against per-sample values."""
    got, m = alg.loss(params, target, batch)
    for name, want in (("loss_td", td), ("loss_opt", opt), ("loss_nopt", nopt)):
        assert np.mean(want) > 1e-3, name  # every term active, so every term is checked
        assert float(m[name]) == pytest.approx(np.mean(want), rel=1e-5), name
    assert float(got) == pytest.approx(np.mean(td) + LAM_OPT * np.mean(opt) + LAM_NOPT * np.mean(nopt), rel=1e-5)


@pytest.mark.parametrize("td_target_kind", ["paper", "code"])
def test_qtran_base_loss_by_hand(td_target_kind):
    cfg, alg, params, target, batch = _setup("qtran-base", **{"qtran.td_target": td_target_kind})
    mixer = params["mixer"]
    td, opt, nopt = [], [], []
    for b in range(len(batch.reward)):
        q, trunk, tq, ttrunk, u, u_next, r, keep = _sample(cfg, params, target, batch, b)
        q_jt = lambda mix, tr, a: float(q_jt_base_ref(cfg, mix, tr, jnp.asarray(a), N_ACTIONS))  # noqa: E731
        v = float(v_ref(cfg, mixer, trunk))
        # paper: Q_jt^-(tau', u_bar'); released code: sum_i max_a Q_i^-(tau', a)
        nxt = q_jt(target["mixer"], ttrunk, u_next) if td_target_kind == "paper" else tq.max(-1).sum()
        td.append((q_jt(mixer, trunk, u) - (r + keep * nxt)) ** 2)
        opt.append((q.max(-1).sum() - q_jt(mixer, trunk, q.argmax(-1)) + v) ** 2)
        nopt.append(min(_at(q, u).sum() - q_jt(mixer, trunk, u) + v, 0.0) ** 2)
    _assert_qtran_terms(alg, params, target, batch, td, opt, nopt)


@pytest.mark.parametrize("td_target_kind", ["paper", "code"])
def test_qtran_alt_loss_by_hand(td_target_kind):
    cfg, alg, params, target, batch = _setup("qtran-alt", **{"qtran.td_target": td_target_kind})
    mixer = params["mixer"]
    td, opt, nopt = [], [], []
    for b in range(len(batch.reward)):
        q, trunk, tq, ttrunk, u, u_next, r, keep = _sample(cfg, params, target, batch, b)
        # head i's row Q_jt,i(tau, ., u_-i), written out from f_alt, h_V and h_Q's parameters
        rows_of = lambda mix, tr, a: _np(alt_rows_ref(cfg, mix, tr, jnp.asarray(a), N_ACTIONS))  # noqa: E731
        v = float(v_ref(cfg, mixer, trunk))
        rows, rows_next = rows_of(mixer, trunk, u), rows_of(target["mixer"], ttrunk, u_next)
        # paper: head i at its own u_bar'_i; released code: one target, max over heads and actions
        nxt = _at(rows_next, u_next) if td_target_kind == "paper" else np.full(N_AGENTS, rows_next.max())
        td.append(np.mean((_at(rows, u) - (r + keep * nxt)) ** 2))
        u_bar = q.argmax(-1)
        opt.append(np.mean((q.max(-1).sum() - _at(rows_of(mixer, trunk, u_bar), u_bar) + v) ** 2))
        # L_nopt_min: per agent i, min over its actions a of Q_i(a) + sum_{j != i} Q_j(u_j) - Q_jt,i(a, u_-i) + V
        mins = [min(q[i, a] + sum(q[j, u[j]] for j in range(N_AGENTS) if j != i) - rows[i, a] + v
                    for a in range(N_ACTIONS)) for i in range(N_AGENTS)]
        nopt.append(np.mean(np.square(mins)))
    _assert_qtran_terms(alg, params, target, batch, td, opt, nopt)


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
