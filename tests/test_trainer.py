import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.config import make_config
from qtran.networks import Agents
from qtran.replay import add, init_buffer, sample
from qtran.rollout import epsilon_greedy, run_episode
from qtran.run import fit
from qtran.envs.matrix import make_matrix_game
from qtran.train import epsilon

SHORT = ["steps=300", "warmup_steps=64", "eval.interval=100", "progress=false", "eps.start=1", "eps.end=1"]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("algo", ["qtran-base", "qtran-alt", "qmix"])
def test_same_seed_twice_gives_identical_results(algo):
    s1, sum1 = fit(SHORT + [f"algo={algo}", "seeds=2"], write=False)
    s2, sum2 = fit(SHORT + [f"algo={algo}", "seeds=2"], write=False)
    for a, b in zip(_leaves(s1.params), _leaves(s2.params)):
        np.testing.assert_array_equal(a, b)
    assert sum1["eval_curve"] == sum2["eval_curve"]


@pytest.mark.parametrize("algo", ["qtran-alt", "vdn"])
def test_seed_of_a_vmapped_run_equals_a_single_seed_run(algo):
    """Same random streams and the same maths; XLA picks other matmul kernels for another batch
    shape, so parameters agree to float32 rounding (not bit for bit) after hundreds of updates."""
    batched, sb = fit(SHORT + [f"algo={algo}", "seeds=10"], write=False)
    single, ss = fit(SHORT + [f"algo={algo}", "seeds=1", "seed=7"], write=False)
    for a, b in zip(_leaves(batched.params), _leaves(single.params)):
        np.testing.assert_allclose(a[7], b[0], rtol=1e-3, atol=1e-4)
    assert [r[7] for r in sb["eval_curve"]["returns"]] == [r[0] for r in ss["eval_curve"]["returns"]]
    assert sb["greedy_joint_actions"][7] == ss["greedy_joint_actions"][0]


def test_different_seeds_differ():
    states, _ = fit(SHORT + ["algo=vdn", "seeds=2"], write=False)
    first = _leaves(states.params)[0]
    assert not np.allclose(first[0], first[1])


@pytest.mark.parametrize("shared", [True, False])
def test_an_agents_action_ignores_other_agents_observations(shared):
    agents = Agents(n_agents=3, n_actions=5, obs_dim=4, hidden=16, shared=shared)
    params = agents.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    avail = jnp.ones((3, 5), bool)
    for eps in (0.0, 0.5):
        for trial in range(5):
            key = jax.random.PRNGKey(100 + trial)
            base = epsilon_greedy(key, agents.apply(params, obs)[0], avail, eps)
            changed = obs.at[2].set(jax.random.normal(jax.random.PRNGKey(200 + trial), (4,)) * 10)
            moved = epsilon_greedy(key, agents.apply(params, changed)[0], avail, eps)
            np.testing.assert_array_equal(base[:2], moved[:2])
            # the values too, not only their argmax (which a small leak would leave as it is)
            np.testing.assert_array_equal(agents.apply(params, obs)[0][:2], agents.apply(params, changed)[0][:2])
    # and the observation does matter for its own agent
    q_a = agents.apply(params, obs)[0][2]
    q_b = agents.apply(params, obs.at[2].add(3.0))[0][2]
    assert not np.allclose(q_a, q_b)


def test_epsilon_greedy_respects_available_actions():
    q = jnp.zeros((2, 4)).at[:, 0].set(10.0)
    avail = jnp.array([[False, True, False, True], [True, True, True, True]])
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    acts = jax.vmap(lambda k: epsilon_greedy(k, q, avail, 1.0))(keys)
    assert set(np.asarray(acts[:, 0]).tolist()) == {1, 3}
    greedy_acts = epsilon_greedy(keys[0], q, avail, 0.0)
    assert greedy_acts.tolist() == [1, 0]


def test_epsilon_schedule():
    cfg = make_config(["steps=1000", "eps.start=1.0", "eps.end=0.1", "eps.anneal_steps=500"])
    assert float(epsilon(cfg, 0)) == pytest.approx(1.0)
    assert float(epsilon(cfg, 250)) == pytest.approx(0.55)
    assert float(epsilon(cfg, 500)) == pytest.approx(0.1)
    assert float(epsilon(cfg, 900)) == pytest.approx(0.1)
    cfg = make_config(["steps=1000", "eps.end=0.2"])  # default anneal: 45% of steps
    assert float(epsilon(cfg, 450)) == pytest.approx(0.2)


def test_replay_ring_buffer_overwrites_oldest_and_samples_filled_slots():
    env = make_matrix_game(np.zeros((2, 2)))
    buf = init_buffer(env, capacity=4)
    params = Agents(2, 2, 1, 8, True).init(jax.random.PRNGKey(0))
    ep, _, _ = run_episode(env, Agents(2, 2, 1, 8, True), params, jax.random.PRNGKey(0), 1.0)
    many = jax.tree.map(lambda x: jnp.stack([x] * 3), ep)
    many = many._replace(reward=jnp.arange(3.0)[:, None])
    buf = add(buf, many)
    assert int(buf.size) == 3 and int(buf.pos) == 3
    drawn = sample(buf, jax.random.PRNGKey(1), 256).reward[:, 0]
    assert set(np.asarray(drawn).tolist()) == {0.0, 1.0, 2.0}
    buf = add(buf, many._replace(reward=jnp.arange(10.0, 13.0)[:, None]))
    assert int(buf.size) == 4 and int(buf.pos) == 2
    assert np.asarray(buf.data.reward[:, 0]).tolist() == [11.0, 12.0, 2.0, 10.0]


def test_no_update_during_warmup():
    states, _ = fit(["algo=vdn", "steps=50", "warmup_steps=100", "progress=false"], write=False)
    init_states, _ = fit(["algo=vdn", "steps=1", "warmup_steps=100", "progress=false"], write=False)
    for a, b in zip(_leaves(states.params), _leaves(init_states.params)):
        np.testing.assert_array_equal(a, b)


def test_parallel_envs_and_episode_records():
    states, summary = fit(["algo=qtran-base", "steps=64", "n_envs=8", "warmup_steps=0",
                           "progress=false", "eval.interval=32"], write=False)
    assert int(states.buffer.size[0]) == 64
    assert summary["eval_curve"]["steps"] == [0, 32, 64]


def test_transition_sampling_takes_valid_steps_and_their_successors():
    from qtran.algorithms import Batch
    from qtran.replay import sample_transitions

    env = make_matrix_game(np.zeros((2, 2)))
    buf = init_buffer(env, capacity=3)
    T = 5
    # hand-made episodes: obs value = 10 * episode + t, episode 1 ends after 3 steps
    obs = (10.0 * jnp.arange(3)[:, None] + jnp.arange(T + 1)[None, :])[..., None, None] * jnp.ones((1, 1, 2, 1))
    mask = jnp.ones((3, T), bool).at[1, 3:].set(False)
    eps = Batch(obs=obs, state=jnp.zeros((3, T + 1, 1)), avail=jnp.ones((3, T + 1, 2, 2), bool),
                actions=jnp.zeros((3, T, 2), jnp.int32), reward=10.0 * jnp.arange(3)[:, None] + jnp.arange(T)[None, :],
                terminated=jnp.zeros((3, T), bool), mask=mask)
    buf = buf._replace(data=eps, size=jnp.int32(3))
    b = sample_transitions(buf, jax.random.PRNGKey(0), 512)
    assert b.obs.shape == (512, 2, 2, 1) and b.reward.shape == (512, 1)
    now, nxt, r = np.asarray(b.obs[:, 0, 0, 0]), np.asarray(b.obs[:, 1, 0, 0]), np.asarray(b.reward[:, 0])
    np.testing.assert_array_equal(nxt, now + 1)  # tau' is the step after tau
    np.testing.assert_array_equal(r, now)  # reward of the same step
    assert bool(b.mask.all())  # never a padded step
    ep1_steps = now[(now >= 10) & (now < 20)] - 10
    assert set(ep1_steps.tolist()) == {0.0, 1.0, 2.0}
    assert set(now.tolist()) >= {0.0, 4.0, 20.0, 24.0}


def test_env_values_batch_with_seeds_and_match_separate_runs():
    """Predator-prey penalties as a batch axis: run (P, seed) equals a run with env.penalty=P."""
    common = ["algo=vdn", "env=predator_prey", "env.episode_limit=10", "steps=60", "warmup_steps=20",
              "eval.interval=30", "eval.episodes=4", "progress=false", "agent.hidden=16"]
    batched, sb = fit(common + ["seeds=2", "env_values=[0.5,1.5]"], write=False)
    assert sb["seeds"] == [0, 1, 0, 1] and sb["env_values"] == [0.5, 0.5, 1.5, 1.5]
    single, ss = fit(common + ["seeds=1", "seed=1", "env.penalty=1.5"], write=False)
    for a, b in zip(_leaves(batched.params), _leaves(single.params)):
        np.testing.assert_allclose(a[3], b[0], rtol=1e-3, atol=1e-4)
    assert [r[3] for r in sb["eval_curve"]["returns"]] == pytest.approx([r[0] for r in ss["eval_curve"]["returns"]], abs=1e-4)
    assert float(batched.env_value[2]) == 1.5


def test_a_user_defined_environment_trains_through_the_python_api():
    """The README's example environment: both agents must pick the same action."""
    from qtran.envs.base import Env
    from qtran.run import train

    obs = jnp.ones((2, 1))
    env = Env(name="meet", n_agents=2, n_actions=4, obs_dim=1, state_dim=1, episode_limit=1,
              reset=lambda key: (obs, jnp.zeros((), jnp.int32)),
              step=lambda key, s, a: (obs, s + 1, jnp.where(a[0] == a[1], 1.0, 0.0), jnp.bool_(True), {}),
              avail_actions=lambda s: jnp.ones((2, 4), bool), global_state=lambda s: jnp.ones((1,)),
              single_state=True, one_step=True)
    summary = train(["algo=qtran-alt", "seeds=3", "steps=400", "warmup_steps=32", "progress=false"],
                    write=False, env=env)
    assert summary["env"] == "meet"
    assert all(a == b for a, b in summary["greedy_joint_actions"])  # coordinated in every seed
    assert summary["final_eval_return"] == [1.0, 1.0, 1.0]


def test_agent_init_code_draws_kernels_from_normal_0_1():
    # The released code's N(0, 0.1) kernels (SPEC.md) against Flax's LeCun normal, whose std for
    # the first layer (fan-in 11 here: 9 observations + 2 agent ids) is 1/sqrt(11) = 0.30.
    from qtran.algorithms import make_algorithm
    from qtran.envs import make_env

    stds = {}
    for init in ("default", "code"):
        cfg = make_config(["env=predator_prey", f"agent.init={init}", "agent.hidden=512"])
        params = make_algorithm(cfg, make_env(cfg.env)).agents.init(jax.random.PRNGKey(0))
        first = next(layer for layer in params["params"].values() if layer["kernel"].shape[0] == 11)
        stds[init] = float(np.std(first["kernel"]))
        assert float(np.abs(first["bias"]).max()) == 0.0
    assert abs(stds["code"] - 0.1) < 0.01
    assert abs(stds["default"] - 11**-0.5) < 0.03


def test_agent_init_is_checked():
    with pytest.raises(Exception, match="agent.init must be default, code or orthogonal"):
        make_config(["agent.init=xavier"])


@pytest.mark.parametrize("overrides,has_qr", [
    (["algo=qtran-alt"], False),  # vmapped
    (["algo=qtran-base", "env=predator_prey", "env.grid=4", "agent.recurrent=true"], True),  # GRU: looped
])
def test_init_of_several_runs_gives_each_run_its_own_init_bit_for_bit(overrides, has_qr):
    """`Trainer.init` vmaps the runs' inits unless they hold a QR decomposition (then it loops,
    tests/test_recurrent.py says why); either way every run's state is that run's init alone."""
    from qtran.algorithms import make_algorithm
    from qtran.envs import make_env
    from qtran.train import QR_PRIMITIVES, Trainer, uses_primitive

    cfg = make_config(overrides)
    env = make_env(cfg.env)
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    seeds = [3, 4, 5]
    states = trainer.init_runs(seeds)
    alone = jax.jit(trainer._init_one)
    for i, seed in enumerate(seeds):
        single = alone(jax.random.PRNGKey(seed), jnp.float32(0.0))
        for a, b in zip(_leaves(states), _leaves(single)):
            assert a[i].tobytes() == b.tobytes()
    jaxpr = jax.make_jaxpr(trainer._init_one)(jax.random.PRNGKey(0), jnp.float32(0.0)).jaxpr
    assert uses_primitive(jaxpr, QR_PRIMITIVES) == has_qr
