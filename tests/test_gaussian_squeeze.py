import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from qtran.envs.gaussian_squeeze import (
    FAMILY,
    GaussianSqueezeConfig,
    make_gaussian_squeeze,
    reward,
    state_from_s,
)
from qtran.errors import UserError


def make(**kw):
    return make_gaussian_squeeze(GaussianSqueezeConfig(**kw))


def g_by_hand(x, domains):
    """G(x) written out: GS is the (8, 0.5) term alone; MGS adds the (5, 1) term."""
    gs = x * math.exp(-((x - 8.0) ** 2) / 0.5**2)
    return gs if domains == "gs" else gs + x * math.exp(-((x - 5.0) ** 2) / 1.0**2)


# Fixed s (paper scale, binary-exact values) and joint actions with x worked out by hand:
#   s = [0.125]*8 + [0.0625, 0.1875]
#   [8]*8 + [0, 0]       -> x = 8 * 0.125 * 8             = 8.0
#   [8]*5 + [0]*5        -> x = 5 * 0.125 * 8             = 5.0
#   [8]*7 + [0, 0, 4]    -> x = 7 + 4 * 0.1875            = 7.75
#   [0]*8 + [4, 4]       -> x = 0.25 + 0.75               = 1.0
# The code setting uses s ten times larger and divides x by N = 10, so x is the same; it also
# allows action 10:
#   [10]*6 + [0, 0, 0, 2] -> x = (6 * 12.5 + 2 * 1.875) / 10 = 7.875
S_PAPER = [0.125] * 8 + [0.0625, 0.1875]
CASES = [
    ([8] * 8 + [0, 0], 8.0),
    ([8] * 5 + [0] * 5, 5.0),
    ([8] * 7 + [0, 0, 4], 7.75),
    ([0] * 8 + [4, 4], 1.0),
]
CODE_ONLY = [([10] * 6 + [0, 0, 0, 2], 7.875)]


@pytest.mark.parametrize("domains", ["gs", "mgs"])
@pytest.mark.parametrize("setting", ["paper", "code"])
def test_reward_matches_the_formula_by_hand(domains, setting):
    env = make(domains=domains, setting=setting)
    s = S_PAPER if setting == "paper" else [10 * v for v in S_PAPER]
    state = state_from_s(s)
    for actions, x in CASES + (CODE_ONLY if setting == "code" else []):
        _, _, r, done, info = env.step(jax.random.PRNGKey(0), state, jnp.array(actions))
        assert float(info["x"]) == pytest.approx(x, rel=1e-6)
        assert float(r) == pytest.approx(g_by_hand(x, domains), rel=1e-5, abs=1e-6)
        assert bool(done)


def test_reward_hand_picked_values():
    # At the GS peak centre the exponent is 0, so G = x; MGS adds 8 e^-9 from the broad hill.
    assert float(reward(8.0, (8.0,), (0.5,))) == pytest.approx(8.0, rel=1e-6)
    assert float(reward(8.0, (8.0, 5.0), (0.5, 1.0))) == pytest.approx(8.0 + 8.0 * math.exp(-9.0), rel=1e-6)
    # 7.75: 7.75 e^-0.25 = 6.03570...
    assert float(reward(7.75, (8.0,), (0.5,))) == pytest.approx(6.035702, rel=1e-5)
    # At x = 5 GS gives 5 e^-36, essentially nothing; MGS gives about 5.
    assert float(reward(5.0, (8.0,), (0.5,))) < 1e-10
    assert float(reward(5.0, (8.0, 5.0), (0.5, 1.0))) == pytest.approx(5.0, rel=1e-6)
    # Elementwise over arrays.
    xs = jnp.array([[1.0, 5.0], [7.75, 8.0]])
    expected = [[g_by_hand(1.0, "mgs"), g_by_hand(5.0, "mgs")], [g_by_hand(7.75, "mgs"), g_by_hand(8.0, "mgs")]]
    np.testing.assert_allclose(np.asarray(reward(xs, (8.0, 5.0), (0.5, 1.0))), expected, rtol=1e-5, atol=1e-7)


def _grid(mus, sigmas):
    # Step 1e-3: fine enough for the 0.1 tolerances, coarse enough that float32 rounding on the
    # flat hilltops cannot make spurious peaks.
    x = np.linspace(0.0, 12.0, 12001)
    g = np.asarray(reward(jnp.asarray(x, jnp.float32), mus, sigmas), np.float64)
    peaks = np.flatnonzero((g[1:-1] > g[:-2]) & (g[1:-1] >= g[2:])) + 1
    return x, g, peaks


@pytest.mark.parametrize("setting", ["paper", "code"])
def test_optimum_and_pitfall_where_the_spec_says(setting):
    gs, mgs = make(domains="gs", setting=setting), make(domains="mgs", setting=setting)
    assert gs.meta["mus"] == (8.0,) and gs.meta["sigmas"] == (0.5,)
    assert mgs.meta["mus"] == (8.0, 5.0) and mgs.meta["sigmas"] == (0.5, 1.0)

    # GS: one peak, near x = 8, worth about 8; G only rises before it, so nothing near 5.
    x, g, peaks = _grid((8.0,), (0.5,))
    assert len(peaks) == 1
    assert x[peaks[0]] == pytest.approx(8.0, abs=0.1) and g[peaks[0]] == pytest.approx(8.0, abs=0.1)
    near5 = (x > 3.0) & (x < 7.0)
    # (>= rather than >: in float32 G underflows to 0 below x = 3.5 or so.)
    assert np.all(np.diff(g[near5]) >= 0) and g[near5].max() < 0.2
    assert gs.meta["optimum"] == pytest.approx(8.0, abs=0.1)
    assert gs.meta["optimum_x"] == pytest.approx(8.0, abs=0.1)
    assert gs.meta["pitfall"] is None

    # MGS: global peak near 8 worth about 8, plus a local one near 5 worth about 5.
    x, g, peaks = _grid((8.0, 5.0), (0.5, 1.0))
    assert len(peaks) == 2
    low, high = sorted(peaks, key=lambda p: x[p])
    assert x[high] == pytest.approx(8.0, abs=0.1) and g[high] == pytest.approx(8.0, abs=0.1)
    assert x[low] == pytest.approx(5.0, abs=0.3) and g[low] == pytest.approx(5.0, abs=0.3)
    assert g[high] == g.max()
    assert mgs.meta["optimum"] == pytest.approx(8.0, abs=0.1)
    assert mgs.meta["optimum_x"] == pytest.approx(8.0, abs=0.1)
    assert mgs.meta["pitfall"] == pytest.approx(5.0, abs=0.3)
    assert mgs.meta["pitfall_x"] == pytest.approx(5.0, abs=0.3)
    # The meta values agree with the grid here.
    assert mgs.meta["optimum"] == pytest.approx(g[high], abs=1e-3)
    assert mgs.meta["pitfall"] == pytest.approx(g[low], abs=1e-3)


@pytest.mark.parametrize("setting", ["paper", "code"])
def test_vmapped_reset_and_step_equal_a_loop(setting):
    env = make(domains="mgs", setting=setting, agents=6)
    keys = jax.random.split(jax.random.PRNGKey(7), 8)
    step_keys = jax.random.split(jax.random.PRNGKey(8), 8)
    actions = jax.random.randint(jax.random.PRNGKey(9), (8, 6), 0, env.n_actions)

    obs_b, states_b = jax.jit(jax.vmap(env.reset))(keys)
    out_b = jax.jit(jax.vmap(env.step))(step_keys, states_b, actions)
    for i in range(8):
        obs, state = env.reset(keys[i])
        out = env.step(step_keys[i], state, actions[i])
        np.testing.assert_array_equal(np.asarray(obs_b[i]), np.asarray(obs))
        np.testing.assert_array_equal(np.asarray(states_b.s[i]), np.asarray(state.s))
        np.testing.assert_allclose(float(out_b[2][i]), float(out[2]), rtol=1e-6)
        assert bool(out_b[3][i]) and bool(out[3])
    # Different keys give different draws (the batch is not one s repeated).
    assert len({tuple(np.asarray(s).tolist()) for s in states_b.s}) == 8


def test_same_key_same_s_and_new_s_each_reset():
    env = make()
    _, a = env.reset(jax.random.PRNGKey(3))
    _, b = env.reset(jax.random.PRNGKey(3))
    _, c = env.reset(jax.random.PRNGKey(4))
    np.testing.assert_array_equal(np.asarray(a.s), np.asarray(b.s))
    assert not np.array_equal(np.asarray(a.s), np.asarray(c.s))
    assert env.single_state is False


@pytest.mark.parametrize("setting,n_actions,s_max", [("paper", 10, 0.2), ("code", 11, 2.0)])
def test_sizes_and_s_range(setting, n_actions, s_max):
    env = make(setting=setting, agents=10)
    assert (env.n_agents, env.n_actions, env.state_dim) == (10, n_actions, 10)
    assert env.episode_limit == 1 and env.one_step
    _, states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 500))
    s = np.asarray(states.s)
    assert s.min() >= 0.0 and s.max() <= s_max
    # The whole range is used: the draws come close to both ends.
    assert s.min() < 0.01 * s_max and s.max() > 0.99 * s_max
    state = jax.tree_util.tree_map(lambda v: v[0], states)
    avail = env.avail_actions(state)
    assert avail.shape == (10, n_actions) and bool(avail.all())
    np.testing.assert_array_equal(np.asarray(env.global_state(state)), s[0])


@pytest.mark.parametrize("agents", [2, 3, 10])
def test_obs_shapes_own_and_all(agents):
    own = make(agents=agents, obs="own")
    everything = make(agents=agents, obs="all")
    key = jax.random.PRNGKey(1)
    obs_own, state = own.reset(key)
    obs_all, state_all = everything.reset(key)
    assert own.obs_dim == 1 and obs_own.shape == (agents, 1)
    assert everything.obs_dim == agents and obs_all.shape == (agents, agents)
    s = np.asarray(state.s)
    np.testing.assert_array_equal(np.asarray(obs_own)[:, 0], s)
    np.testing.assert_array_equal(np.asarray(obs_all), np.tile(s, (agents, 1)))
    np.testing.assert_array_equal(np.asarray(state_all.s), s)
    # The step's next observation has the same layout.
    nxt = everything.step(key, state_all, jnp.zeros(agents, jnp.int32))[0]
    assert nxt.shape == (agents, agents)


@pytest.mark.parametrize("setting,s_max", [("paper", 0.2), ("code", 2.0)])
def test_equal_s_gives_every_agent_the_same_s(setting, s_max):
    env = make(domains="mgs", setting=setting, equal_s=True)
    _, states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(5), 200))
    s = np.asarray(states.s)
    assert np.all(s == s[:, :1])
    # Still a fresh draw each episode, over the same range.
    assert len(np.unique(s[:, 0])) == 200
    assert s.min() >= 0.0 and s.max() <= s_max and s.max() > 0.95 * s_max
    # Unequal by default.
    _, st = make(setting=setting).reset(jax.random.PRNGKey(5))
    assert len(np.unique(np.asarray(st.s))) > 1


@pytest.mark.parametrize("bad,message", [
    ({"domains": "xgs"}, "env.domains"),
    ({"setting": "pytorch"}, "env.setting"),
    ({"obs": "mine"}, "env.obs"),
    ({"agents": 0}, "env.agents"),
    ({"agents": -3}, "env.agents"),
])
def test_bad_config_is_a_user_error(bad, message):
    with pytest.raises(UserError, match=message) as err:
        make(**bad)
    assert "\n" not in str(err.value)


def test_builds_from_an_omegaconf_node_and_family_tuple():
    config_cls, build = FAMILY
    assert config_cls is GaussianSqueezeConfig and build is make_gaussian_squeeze
    node = OmegaConf.structured(GaussianSqueezeConfig(domains="mgs", setting="code", agents=4, obs="all"))
    env = build(node)
    assert (env.n_agents, env.n_actions, env.obs_dim) == (4, 11, 4)
    assert config_cls().name == "gaussian_squeeze"
