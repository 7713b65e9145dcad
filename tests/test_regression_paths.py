"""Guards for the loss internals that are about to be rewritten for speed.

Every value here is recomputed in the test from the Flax parameter dicts with plain matrix
products (never by calling the modules under test), so a bug inside the joint or
counterfactual networks, QTRAN-alt's lambdas, td_target=code, masking, available-action
masks, the double-Q chooser or the target-network copy changes a number and fails a test.

Parameters are random in every leaf (biases too: Flax starts them at zero, which would hide
a bias that is dropped or added twice). The environment is predator-prey, a multi-step game
(`env.one_step` is False), so the bootstrapped TD target is always evaluated.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import Batch, make_algorithm
from qtran.config import make_config
from qtran.envs import make_env
from qtran.train import Trainer

GAMMA = 0.9
LAM_OPT, LAM_NOPT = 0.3, 2.5  # not 1, so a dropped or swapped lambda shows


# ---- the networks, written out from the parameter dicts -------------------------------------

def _dense(layer, x):
    return x @ layer["kernel"] + layer["bias"]


def _mlp(layers, x):
    """Flax MLP: Dense_0 .. Dense_k with ReLU between them, the last one linear."""
    names = sorted(layers, key=lambda s: int(s.split("_")[1]))
    for name in names[:-1]:
        x = jax.nn.relu(_dense(layers[name], x))
    return _dense(layers[names[-1]], x)


def _agent_one(layers, x):
    # AgentMLP builds the outer layer of each nested call first, so Flax numbers them:
    # Dense_1 input layer, Dense_0 second trunk layer, Dense_3 head hidden, Dense_2 Q values.
    trunk = jax.nn.relu(_dense(layers["Dense_0"], jax.nn.relu(_dense(layers["Dense_1"], x))))
    q = _dense(layers["Dense_2"], jax.nn.relu(_dense(layers["Dense_3"], trunk)))
    return q, trunk


def agent_ref(cfg, agent_params, obs):
    """(q[..., N, U], trunk[..., N, H]) of feed-forward agents on obs[..., N, D]."""
    n = obs.shape[-2]
    layers = agent_params["params"]
    if cfg.agent.shared:  # one network, a one-hot agent id appended to the observation
        ids = jnp.broadcast_to(jnp.eye(n), obs.shape[:-1] + (n,))
        return _agent_one(layers, jnp.concatenate([obs, ids], -1))
    outs = [_agent_one(jax.tree.map(lambda a: a[i], layers), obs[..., i, :]) for i in range(n)]
    return jnp.stack([o[0] for o in outs], -2), jnp.stack([o[1] for o in outs], -2)


def h_q_ref(mixer, trunk, actions, n_actions):
    """h_Q,i([trunk_i, onehot(u_i)]): one 2-layer MLP on the concatenation."""
    x = jnp.concatenate([trunk, jax.nn.one_hot(actions, n_actions)], -1)
    return _mlp(mixer["hq"]["params"]["MLP_0"], x)


def h_v_ref(mixer, trunk):
    return _mlp(mixer["hv"]["params"]["MLP_0"], trunk)


def _pool(cfg, h):
    return h.sum(-2) if cfg.qtran.pooling == "sum" else h.mean(-2)


def q_jt_base_ref(cfg, mixer, trunk, actions, n_actions):
    """QTRAN-base: Q_jt = f_r(pool_i h_Q,i)."""
    return _mlp(mixer["f_r"]["params"], _pool(cfg, h_q_ref(mixer, trunk, actions, n_actions)))[..., 0]


def v_ref(cfg, mixer, trunk):
    """V_jt = f_v(pool_i h_V,i)."""
    return _mlp(mixer["f_v"]["params"], _pool(cfg, h_v_ref(mixer, trunk)))[..., 0]


def alt_rows_ref(cfg, mixer, trunk, actions, n_actions):
    """QTRAN-alt: head i on h_V,i + pool_{j != i} h_Q,j -> a row of |U| values; [..., N, U]."""
    h_q = h_q_ref(mixer, trunk, actions, n_actions)
    n = h_q.shape[-2]
    heads = []
    for i in range(n):
        others = sum(h_q[..., j, :] for j in range(n) if j != i)
        if cfg.qtran.pooling == "mean":
            others = others / n
        heads.append(_mlp(mixer["f_alt"]["params"], h_v_ref(mixer, trunk[..., i, :]) + others))
    return jnp.stack(heads, -2)


def qmix_ref(cfg, mixer, qs, state):
    """QMIX's Q_tot(s, u)[...] from QMixer's parameter dict (2-layer hypernetworks, the default):
    elu(sum_i q_i |W1(s)|_i + b1(s)) . |w2(s)| + V(s), with qs[..., N] the chosen agent values
    and state[..., S]."""
    assert cfg.qmix.hypernet_layers == 2
    p = mixer["params"]
    w1 = jnp.abs(_mlp(p["MLP_0"], state)).reshape(state.shape[:-1] + (qs.shape[-1], cfg.qmix.embed))
    hidden = jax.nn.elu(jnp.einsum("...n,...ne->...e", qs, w1) + _dense(p["Dense_0"], state))
    return (hidden * jnp.abs(_mlp(p["MLP_1"], state))).sum(-1) + _mlp(p["MLP_2"], state)[..., 0]


# ---- reference losses, from the paper's formulas (SPEC.md) -----------------------------------

def _take(x, idx):
    """x[..., U] at integer idx[...]."""
    return jnp.take_along_axis(x, idx[..., None], -1)[..., 0]


def _max_avail(x, avail):
    return jnp.where(avail, x, -jnp.inf).max(-1)


def _argmax_avail(x, avail):
    return jnp.where(avail, x, -jnp.inf).argmax(-1)


def _valid_mean(x, mask):
    """Mean over the valid (mask = 1) steps only; padding never enters, whatever it holds."""
    return jnp.where(mask, x, 0.0).sum() / mask.sum()


def reference_loss(cfg, env, params, target, b):
    """(total loss, {"loss_td", "loss_opt", "loss_nopt"}) written out by hand for cfg.algo."""
    sg = jax.lax.stop_gradient
    n_u = env.n_actions
    q, trunk = agent_ref(cfg, params["agent"], b.obs[:, :-1])  # tau: [B, T, N, U], [B, T, N, H]
    tq, ttrunk = agent_ref(cfg, target["agent"], b.obs[:, 1:])  # tau', target network
    av, av_next = b.avail[:, :-1], b.avail[:, 1:]
    u, r, mask = b.actions, b.reward, b.mask
    keep = GAMMA * (1.0 - b.terminated.astype(jnp.float32))
    # u_bar': argmax over available actions of the online values (double Q) or the target's.
    chooser = agent_ref(cfg, params["agent"], b.obs[:, 1:])[0] if cfg.double_q else tq
    u_next = _argmax_avail(chooser, av_next)
    q_taken = _take(q, u)  # [B, T, N]
    u_bar = _argmax_avail(q, av)
    q_prime_greedy = _max_avail(q, av).sum(-1)

    if cfg.algo == "vdn":
        y = sg(r + keep * _take(tq, u_next).sum(-1))
        return _parts(_valid_mean((q_taken.sum(-1) - y) ** 2, mask))
    if cfg.algo == "iql":
        y = sg(r[..., None] + keep[..., None] * _take(tq, u_next))
        return _parts(_valid_mean(((q_taken - y) ** 2).mean(-1), mask))
    if cfg.algo == "qmix":
        y = sg(r + keep * qmix_ref(cfg, target["mixer"], _take(tq, u_next), b.state[:, 1:]))
        q_tot = qmix_ref(cfg, params["mixer"], q_taken, b.state[:, :-1])
        return _parts(_valid_mean((q_tot - y) ** 2, mask))

    mix, v = params["mixer"], v_ref(cfg, params["mixer"], trunk)
    if cfg.algo == "qtran-base":
        if cfg.qtran.td_target == "paper":  # Q_jt^-(tau', u_bar')
            nxt = q_jt_base_ref(cfg, target["mixer"], ttrunk, u_next, n_u)
        else:  # released code: sum_i max_a Q_i^-(tau', a)
            nxt = _max_avail(tq, av_next).sum(-1)
        y = sg(r + keep * nxt)
        q_jt = q_jt_base_ref(cfg, mix, trunk, u, n_u)
        td = (q_jt - y) ** 2
        # Q_hat = stop_gradient(Q_jt): the factorisation terms never move the joint network
        opt = (q_prime_greedy - sg(q_jt_base_ref(cfg, mix, trunk, u_bar, n_u)) + v) ** 2
        nopt = jnp.minimum(q_taken.sum(-1) - sg(q_jt) + v, 0.0) ** 2
    else:  # qtran-alt: every term is per head, then averaged over the N heads
        rows_next = alt_rows_ref(cfg, target["mixer"], ttrunk, u_next, n_u)
        if cfg.qtran.td_target == "paper":  # head i at its own u_bar'_i
            nxt = _take(rows_next, u_next)
        else:  # one target for all heads: max_i max_{a available} Q_jt,i^-(tau', a, u_bar'_-i)
            nxt = jnp.broadcast_to(_max_avail(rows_next, av_next).max(-1, keepdims=True), u_next.shape)
        y = sg(r[..., None] + keep[..., None] * nxt)
        rows = alt_rows_ref(cfg, mix, trunk, u, n_u)
        td = ((_take(rows, u) - y) ** 2).mean(-1)
        rows_bar = alt_rows_ref(cfg, mix, trunk, u_bar, n_u)
        opt = ((q_prime_greedy[..., None] - sg(_take(rows_bar, u_bar)) + v[..., None]) ** 2).mean(-1)
        # D(a, u_-i) = Q_i(a) + sum_{j != i} Q_j(u_j) - Q_hat_i(a, u_-i) + V, min over available a
        others = q_taken.sum(-1, keepdims=True) - q_taken
        d = q + others[..., None] - sg(rows) + v[..., None, None]
        d_min = jnp.where(av, d, jnp.inf).min(-1)
        nopt = (d_min**2).mean(-1)
    td, opt, nopt = (_valid_mean(x, mask) for x in (td, opt, nopt))
    total = td + cfg.qtran.lambda_opt * opt + cfg.qtran.lambda_nopt * nopt
    return total, {"loss_td": td, "loss_opt": opt, "loss_nopt": nopt}


def _parts(td):
    return td, {"loss_td": td}


# ---- set-up ------------------------------------------------------------------------------

def _randomise(tree, seed, scale=0.5):
    """Every leaf of a tree of shapes drawn from N(0, scale^2) (numpy: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(scale * rng.standard_normal(x.shape), jnp.float32), tree)


def _setup(algo, *overrides, agents=2):
    """A predator-prey config (small networks), its algorithm, and random params / target."""
    cfg = make_config([f"algo={algo}", "env=predator_prey", f"env.agents={agents}", "agent.hidden=8",
                       "qtran.hidden=8", f"gamma={GAMMA}", f"qtran.lambda_opt={LAM_OPT}",
                       f"qtran.lambda_nopt={LAM_NOPT}", *overrides])
    env = make_env(cfg.env)
    assert not env.one_step  # the bootstrapped target path is the one under test
    alg = make_algorithm(cfg, env)
    key = jax.random.PRNGKey(0)
    # the parameter trees' shapes only: every leaf is drawn afresh below
    shapes = jax.eval_shape(lambda k: {"agent": alg.agents.init(k), "mixer": alg.init_mixer(k)}, key)
    return cfg, env, alg, _action_sensitive(_randomise(shapes, 1)), _action_sensitive(_randomise(shapes, 2))


def _action_sensitive(params):
    """Scale up h_Q's weights on the one-hot action, so Q_jt clearly depends on the joint action
    (with all weights N(0, 0.5^2) it barely does, and an action mix-up would hide in rounding)."""
    if "hq" in params["mixer"]:
        layer = params["mixer"]["hq"]["params"]["MLP_0"]["Dense_0"]
        n_u = layer["kernel"].shape[0] - params["agent"]["params"]["Dense_0"]["kernel"].shape[-1]
        layer["kernel"] = layer["kernel"].at[-n_u:].multiply(4.0)
    return params


def _batch(env, seed, b=6, t=3):
    """Random episodes [b, t] with padding and partly unavailable actions.

    Every agent has at least one available action at every step (its taken action at t < T,
    a random one at T), as in real replay. Padding steps carry huge rewards: any leak of them
    into a mean moves the loss far away.
    """
    n, u = env.n_agents, env.n_actions
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((b, t + 1, n, env.obs_dim))
    state = rng.standard_normal((b, t + 1, env.state_dim))
    acts = rng.integers(0, u, (b, t + 1, n))
    avail = (rng.uniform(size=(b, t + 1, n, u)) < 0.5) | (np.arange(u) == acts[..., None])
    mask = np.ones((b, t), bool)
    mask[1, 2:] = mask[3, 1:] = False
    reward = np.where(mask, 2.0 * rng.standard_normal((b, t)), 1e3)
    terminated = rng.uniform(size=(b, t)) < 0.3
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return Batch(obs=f32(obs), state=f32(state), avail=jnp.asarray(avail), actions=jnp.asarray(acts[:, :t], jnp.int32),
                 reward=f32(reward), terminated=jnp.asarray(terminated), mask=jnp.asarray(mask))


def _assert_trees_close(got, want, rtol=2e-4):
    """Leaf by leaf, relative to the leaf's own scale (gradients span orders of magnitude)."""
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
        scale = float(jnp.abs(w).max()) + 1e-6
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * scale, err_msg=jax.tree_util.keystr(path))


# ---- 1. Q_jt and the counterfactual rows against the hand-written networks -------------------

CASES_1 = [("sum", "true"), ("mean", "false")]  # (qtran.pooling, agent.shared)


@pytest.mark.parametrize("pooling,shared", CASES_1)
def test_qtran_base_q_jt_by_hand(pooling, shared):
    cfg, env, alg, params, _ = _setup("qtran-base", f"qtran.pooling={pooling}", f"agent.shared={shared}")
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.standard_normal((env.n_agents, env.obs_dim)), jnp.float32)
    joint = jnp.asarray(rng.integers(0, env.n_actions, (7, env.n_agents)))
    q, trunk = agent_ref(cfg, params["agent"], obs)
    # the reference agent is the trainer's agent (else everything below compares wrong things)
    np.testing.assert_allclose(alg.agents.apply(params["agent"], obs)[0], q, rtol=1e-5, atol=1e-5)
    trunk_k = jnp.broadcast_to(trunk, (7,) + trunk.shape)
    want = q_jt_base_ref(cfg, params["mixer"], trunk_k, joint, env.n_actions)
    got = alg.joint_q(params, obs, jnp.zeros(env.state_dim), joint)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert float(jnp.std(want)) > 0.1  # the joint actions give different values
    np.testing.assert_allclose(alg.state_value(params, obs, None), v_ref(cfg, params["mixer"], trunk),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling,shared", CASES_1)
def test_qtran_alt_counterfactual_rows_by_hand(pooling, shared):
    cfg, env, alg, params, _ = _setup("qtran-alt", f"qtran.pooling={pooling}", f"agent.shared={shared}",
                                      agents=3)
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.standard_normal((4, 2, env.n_agents, env.obs_dim)), jnp.float32)  # [B, T, N, D]
    joint = jnp.asarray(rng.integers(0, env.n_actions, (4, 2, env.n_agents)))
    _, trunk = agent_ref(cfg, params["agent"], obs)
    want = alt_rows_ref(cfg, params["mixer"], trunk, joint, env.n_actions)  # [B, T, N, U]
    got = alg.extras["counterfactual_q"](params["mixer"], trunk, joint)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # joint_q (one observation, K joint actions) is the mean over heads of each head's value
    # at its own agent's action
    actions = joint[:, 0]  # [K = 4, N]
    rows = alt_rows_ref(cfg, params["mixer"], jnp.broadcast_to(trunk[0, 0], (4,) + trunk.shape[2:]),
                        actions, env.n_actions)
    got_jq = alg.joint_q(params, obs[0, 0], None, actions)
    np.testing.assert_allclose(got_jq, _take(rows, actions).mean(-1), rtol=1e-5, atol=1e-5)


# ---- 2. QTRAN-alt's head i is counterfactual in u_i only ------------------------------------

def test_qtran_alt_head_i_ignores_u_i_and_reads_every_u_j():
    cfg, env, alg, params, _ = _setup("qtran-alt", agents=3)
    n, n_u = env.n_agents, env.n_actions
    obs = jnp.asarray(np.random.default_rng(3).standard_normal((n, env.obs_dim)), jnp.float32)
    _, trunk = agent_ref(cfg, params["agent"], obs)
    rows_of = lambda u: np.asarray(alg.extras["counterfactual_q"](params["mixer"], trunk, jnp.array(u)))  # noqa: E731
    base_u = [1, 3, 0]
    base = rows_of(base_u)
    for i in range(n):
        for a in range(n_u):  # another u_i: head i's row is the same row (it covers every u_i)
            moved = list(base_u)
            moved[i] = a
            np.testing.assert_allclose(rows_of(moved)[i], base[i], rtol=0, atol=1e-5)
        for j in range(n):  # another u_j, j != i: a different u_-i, so a different row
            if j != i:
                moved = list(base_u)
                moved[j] = (base_u[j] + 2) % n_u
                assert np.abs(rows_of(moved)[i] - base[i]).max() > 1e-3, (i, j)


# ---- 3. the whole losses (lambdas, both TD targets, masks, available actions) ----------------

@pytest.mark.parametrize("algo", ["qtran-base", "qtran-alt"])
@pytest.mark.parametrize("td_target_kind", ["paper", "code"])
def test_qtran_total_loss_and_gradients_by_hand(algo, td_target_kind):
    # 3 agents, so QTRAN-alt's heads each pool more than one other agent's h_Q
    cfg, env, alg, params, target = _setup(algo, f"qtran.td_target={td_target_kind}", agents=3)
    batch = _batch(env, 5)
    # the batch really exercises the available-action masks: some agent's unmasked argmax is
    # an unavailable action, at tau (u_bar) and at tau' (u_bar')
    q_all, _ = agent_ref(cfg, params["agent"], batch.obs)
    tq_all, _ = agent_ref(cfg, target["agent"], batch.obs)
    assert not bool(jnp.all(_argmax_avail(q_all, batch.avail) == q_all.argmax(-1)))
    assert not bool(jnp.all(_argmax_avail(tq_all, batch.avail) == tq_all.argmax(-1)))

    (got, m), grads = jax.jit(jax.value_and_grad(alg.loss, has_aux=True))(params, target, batch)
    (want, w), want_grads = jax.jit(jax.value_and_grad(
        lambda p: reference_loss(cfg, env, p, target, batch), has_aux=True))(params)
    for key in ("loss_td", "loss_opt", "loss_nopt"):
        assert float(w[key]) > 1e-3, key  # every term is active, so every term is checked
        assert float(m[key]) == pytest.approx(float(w[key]), rel=1e-4), key
    assert float(got) == pytest.approx(float(want), rel=1e-4)
    # the same gradients: stop-gradients in the same places, h_Q's one-hot rows included
    _assert_trees_close(grads, want_grads)


# ---- 4. double Q: u_bar' from the ONLINE values ------------------------------------------
# A value check: the loss with double_q=true equals the one whose target uses the online
# argmax at tau' (over available actions), and differs from the DQN one (target argmax).

@pytest.mark.parametrize("algo", ["vdn", "iql", "qmix", "qtran-base", "qtran-alt"])
def test_double_q_picks_next_action_with_online_values(algo):
    cfg_dq, env, alg_dq, params, target = _setup(algo, "double_q=true")
    cfg_dqn, _, alg_dqn, _, _ = _setup(algo, "double_q=false")
    batch = _batch(env, 6)
    # online and target networks disagree on u_bar' at some valid step, or the test is void
    online_next = _argmax_avail(agent_ref(cfg_dq, params["agent"], batch.obs[:, 1:])[0], batch.avail[:, 1:])
    target_next = _argmax_avail(agent_ref(cfg_dq, target["agent"], batch.obs[:, 1:])[0], batch.avail[:, 1:])
    assert bool(jnp.any((online_next != target_next).any(-1) & batch.mask))

    td_double = float(reference_loss(cfg_dq, env, params, target, batch)[1]["loss_td"])
    td_dqn = float(reference_loss(cfg_dqn, env, params, target, batch)[1]["loss_td"])
    assert abs(td_double - td_dqn) > 1e-2 * abs(td_dqn)  # the two choosers give different targets
    assert float(alg_dq.loss(params, target, batch)[1]["loss_td"]) == pytest.approx(td_double, rel=1e-4)
    assert float(alg_dqn.loss(params, target, batch)[1]["loss_td"]) == pytest.approx(td_dqn, rel=1e-4)


# ---- 5. the target network is copied every target_update_interval updates -----------------

def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_target_copied_exactly_every_interval():
    # One iteration = one 4-step episode and 2 updates (updates_per_step 0.5); the first is
    # warm-up (warmup_steps=4). With target_update_interval=3 the copies happen at updates
    # 3, 6, 9, 12: in the middle of the 2nd and 4th training iterations and at the end of the
    # 3rd and 6th. eval.interval = one episode makes every chunk exactly one iteration.
    # qtran-base: its mixer has parameters too, and they must be copied with the agents'.
    cfg = make_config(["algo=qtran-base", "env=predator_prey", "env.episode_limit=4", "steps=28",
                       "warmup_steps=4", "updates_per_step=0.5", "target_update_interval=3",
                       "eval.interval=4", "batch_size=4", "buffer_size=16", "agent.hidden=8",
                       "qtran.hidden=8", "lr=0.01"])
    env = make_env(cfg.env)
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    assert (trainer.schedule.updates_per_iter, trainer.schedule.first_train_iter,
            trainer.schedule.chunk_iters, trainer.schedule.total_iters) == (2, 1, 1, 7)
    states = trainer.init_runs([0])
    assert _same(states.params, states.target_params)
    equal, target_moved = [], []
    for it in range(trainer.schedule.total_iters):
        old_target = states.target_params
        states, _ = trainer.chunk(states, jnp.int32(it))
        equal.append(_same(states.params, states.target_params))
        target_moved.append(not _same(old_target, states.target_params))
    # iteration:           warm-up  u1,2   u3,4   u5,6   u7,8   u9,10  u11,12
    assert equal ==        [True,   False, False, True,  False, False, True]  # noqa: E222
    assert target_moved == [False,  False, True,  True,  False, True,  True]


# ---- 6. learned Q_jt on the paper's Table 1 game (eps = 1, 20,000 steps) ---------------------

def _table1(algo):
    """`qtran reproduce table1`'s settings with 3 seeds (one vmapped run): Q_jt[seeds, 3, 3]."""
    from qtran.experiments import table1
    from qtran.run import fit

    _, summary = fit(table1.SETTINGS + ["seeds=3", "progress=false", "tensorboard=false", f"algo={algo}"],
                     write=False)
    return np.asarray(summary["tables"]["q_jt"]), np.asarray(summary["payoff"])


def _check_vdn_table(q_jt, payoff):
    """q_jt[seeds, 3, 3] against the least-squares additive fit of the payoff."""
    # Full exploration samples the 9 cells uniformly, so VDN's Q_jt = Q_1(a) + Q_2(b) tends to
    # the least-squares additive fit of the payoff: Q_jt(A, A) = -56/9.
    u = payoff.shape[0]
    design = np.concatenate([np.repeat(np.eye(u), u, 0), np.tile(np.eye(u), (u, 1))], 1)  # [a, b] one-hots
    coef = np.linalg.lstsq(design, payoff.ravel(), rcond=None)[0]
    fit = (design @ coef).reshape(u, u)
    assert fit[0, 0] == pytest.approx(-56 / 9)
    # Seeds 0-2 measured: -7.05, -6.92, -6.10 at (A, A); every cell of each seed within 0.85 of
    # the fit, the seeds' mean within 0.5. A random-init network sits near 0 everywhere.
    assert abs(q_jt[:, 0, 0].mean() - fit[0, 0]) < 0.75
    np.testing.assert_allclose(q_jt.mean(0), fit, atol=0.75)
    np.testing.assert_allclose(q_jt, np.broadcast_to(fit, q_jt.shape), atol=1.25)


def _check_qmix_table(q_jt):
    """q_jt[seeds, 3, 3]: the paper's Table 1 QMIX pattern."""
    # QMIX learns -8.08 in every cell of A's row and column (about the mean payoff of those five
    # cells, -8) and about 0 in the B/C block. Seeds 0-2 measured: -9.04, -8.16, -8.08, each flat
    # to 0.01; the B/C block within 0.14 of 0.
    touching_a = np.concatenate([q_jt[:, 0, :], q_jt[:, 1:, 0]], axis=1)  # [seeds, 5]
    assert np.ptp(touching_a, axis=1).max() < 0.1  # flat along A's row and column, in every seed
    assert abs(touching_a.mean() - (-8.08)) < 0.6
    np.testing.assert_allclose(touching_a, -8.08, atol=1.2)
    np.testing.assert_allclose(q_jt[:, 1:, 1:], 0.0, atol=0.3)


@pytest.mark.slow
def test_vdn_q_jt_is_the_least_squares_additive_fit_on_table1():
    _check_vdn_table(*_table1("vdn"))


@pytest.mark.slow
def test_qmix_q_jt_flattens_row_and_column_of_a_on_table1():
    _check_qmix_table(_table1("qmix")[0])
