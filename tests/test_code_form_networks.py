"""The released code's network switches, each against outputs computed by hand in NumPy from
the parameter dicts: QTRAN-base's f_r as two ELU layers (`qtran.f_r=elu2`), QMIX's b1 added
after the ELU (`qmix.b1=after`), agents without the one-hot id (`agent.onehot_id=false`) and the
N(0, 0.1) kernels of the joint networks (`qtran.init=code`, `qmix.init=code`).

Every parameter leaf is redrawn at random (biases too, which Flax starts at zero and which
would hide a bias that is dropped or misplaced).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs import make_env

PP = ["env=predator_prey", "env.agents=3", "env.prey=1", "env.grid=5", "agent.hidden=8", "qtran.hidden=6",
      "qmix.embed=5", "qmix.hypernet_hidden=7"]


def build(extra):
    cfg = make_config(PP + extra)
    env = make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    params = {"agent": algo.agents.init(jax.random.PRNGKey(0)), "mixer": algo.init_mixer(jax.random.PRNGKey(1))}
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    params = jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) * 0.5 for k, x in zip(keys, leaves)])
    obs, state = env.reset(jax.random.PRNGKey(3))
    return cfg, env, algo, jax.tree.map(np.asarray, params), np.asarray(obs), np.asarray(env.global_state(state))


def dense(layer, x):
    return x @ layer["kernel"] + layer["bias"]


def relu(x):
    return np.maximum(x, 0.0)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def agents_by_hand(layers, obs, onehot_id):
    """Shared feed-forward agents: Flax numbers AgentMLP's layers Dense_1 (input), Dense_0
    (second trunk layer), Dense_3 (head's hidden), Dense_2 (Q values)."""
    n = obs.shape[0]
    x = np.concatenate([obs, np.eye(n)], -1) if onehot_id else obs
    trunk = relu(dense(layers["Dense_0"], relu(dense(layers["Dense_1"], x))))
    return dense(layers["Dense_2"], relu(dense(layers["Dense_3"], trunk))), trunk


JOINTS = np.array([[0, 1, 2], [4, 4, 4], [3, 0, 1], [2, 2, 0]])


@pytest.mark.parametrize("onehot_id", [True, False])
def test_qtran_base_f_r_as_two_elu_layers(onehot_id):
    cfg, env, algo, params, obs, state = build(["algo=qtran-base", "qtran.f_r=elu2", "qtran.pooling=mean",
                                                f"agent.onehot_id={str(onehot_id).lower()}"])
    _, trunk = agents_by_hand(params["agent"]["params"], obs, onehot_id)
    mixer = params["mixer"]
    hq = mixer["hq"]["params"]["MLP_0"]
    f_r = mixer["f_r"]["params"]
    assert sorted(f_r) == ["Dense_0", "Dense_1", "Dense_2"]  # two hidden layers, then Q_jt
    want = []
    for u in JOINTS:
        x = np.concatenate([trunk, np.eye(env.n_actions)[u]], -1)  # [N, H + U]
        h = dense(hq["Dense_1"], relu(dense(hq["Dense_0"], x))).mean(0)  # mean pooling
        want.append(dense(f_r["Dense_2"], elu(dense(f_r["Dense_1"], elu(dense(f_r["Dense_0"], h)))))[0])
    got = algo.joint_q(params, jnp.asarray(obs), jnp.asarray(state), jnp.asarray(JOINTS))
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)


def test_qtran_base_default_f_r_is_one_relu_layer():
    _, env, algo, params, obs, state = build(["algo=qtran-base"])
    _, trunk = agents_by_hand(params["agent"]["params"], obs, True)
    mixer = params["mixer"]
    hq, f_r = mixer["hq"]["params"]["MLP_0"], mixer["f_r"]["params"]
    assert sorted(f_r) == ["Dense_0", "Dense_1"]
    want = []
    for u in JOINTS:
        x = np.concatenate([trunk, np.eye(env.n_actions)[u]], -1)
        h = dense(hq["Dense_1"], relu(dense(hq["Dense_0"], x))).sum(0)
        want.append(dense(f_r["Dense_1"], relu(dense(f_r["Dense_0"], h)))[0])
    got = algo.joint_q(params, jnp.asarray(obs), jnp.asarray(state), jnp.asarray(JOINTS))
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("b1", ["inside", "after"])
def test_qmix_b1_inside_or_after_the_elu(b1):
    # One-layer hypernetworks (the released code's): w1 = |Dense_0 s|, b1 = Dense_1 s,
    # w2 = |Dense_2 s|, V = MLP_0(s).
    _, env, algo, params, obs, state = build(["algo=qmix", "qmix.hypernet_layers=1", f"qmix.b1={b1}"])
    q, _ = agents_by_hand(params["agent"]["params"], obs, True)
    m = params["mixer"]["params"]
    n, e = env.n_agents, 5
    w1 = np.abs(dense(m["Dense_0"], state)).reshape(n, e)
    bias1 = dense(m["Dense_1"], state)
    w2 = np.abs(dense(m["Dense_2"], state))
    v = dense(m["MLP_0"]["Dense_1"], relu(dense(m["MLP_0"]["Dense_0"], state)))[0]
    want = []
    for u in JOINTS:
        qs = q[np.arange(n), u]
        hidden = elu(qs @ w1 + bias1) if b1 == "inside" else elu(qs @ w1) + bias1
        want.append(hidden @ w2 + v)
    got = algo.joint_q(params, jnp.asarray(obs), jnp.asarray(state), jnp.asarray(JOINTS))
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)
    # The two placements really differ on these parameters (else the test could not tell them apart).
    other = [elu(q[np.arange(n), u] @ w1) + bias1 if b1 == "inside" else elu(q[np.arange(n), u] @ w1 + bias1)
             for u in JOINTS]
    assert not np.allclose([o @ w2 + v for o in other], want, atol=1e-3)


def test_agents_without_onehot_id_read_only_the_observation():
    _, env, algo, params, obs, _ = build(["algo=vdn", "agent.onehot_id=false"])
    first = params["agent"]["params"]["Dense_1"]["kernel"]
    assert first.shape[0] == env.obs_dim  # no id columns
    q, _ = algo.agents.apply(params["agent"], jnp.asarray(obs))
    want, _ = agents_by_hand(params["agent"]["params"], obs, False)
    np.testing.assert_allclose(np.asarray(q), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("algo,key,nets", [("qtran-base", "qtran.init", ("hq", "f_r", "hv", "f_v")),
                                           ("qtran-alt", "qtran.init", ("hq", "hv", "f_alt")),
                                           ("qmix", "qmix.init", ("params",))])
def test_code_init_draws_joint_kernels_from_normal_0_1(algo, key, nets):
    cfg = make_config(["env=predator_prey", f"algo={algo}", f"{key}=code", "qtran.hidden=64", "qmix.embed=64"])
    alg = make_algorithm(cfg, make_env(cfg.env))
    mixer = alg.init_mixer(jax.random.PRNGKey(0))
    kernels = [np.asarray(x).ravel() for name in nets for path, x in
               jax.tree_util.tree_flatten_with_path(mixer[name] if name in mixer else mixer)[0]
               if "kernel" in jax.tree_util.keystr(path)]
    biases = [np.asarray(x).ravel() for path, x in jax.tree_util.tree_flatten_with_path(mixer)[0]
              if "bias" in jax.tree_util.keystr(path)]
    values = np.concatenate(kernels)
    assert values.size > 2000
    # N(0, 0.1): the sample standard deviation within a few percent of 0.1, whatever the layer's
    # fan-in (Flax's default LeCun normal scales by 1 / sqrt(fan-in) and would not pass).
    assert abs(values.std() - 0.1) < 0.006 and abs(values.mean()) < 0.01
    assert all((b == 0).all() for b in biases)
