"""The JaxMARL adapter (qtran.envs.jaxmarl_adapter): trajectories equal JaxMARL's own, step
for step; termination and time limit kept apart; discrete actions only; and a short VDN run
on MPE simple_spread learns a policy clearly better than doing nothing."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import make_algorithm
from qtran.cli import main
from qtran.config import make_config
from qtran.envs import make_env
from qtran.envs.jaxmarl_adapter import import_jaxmarl
from qtran.errors import UserError
from qtran.rollout import run_episode
from qtran.run import train

jaxmarl = import_jaxmarl()


def _ours(*overrides):
    return make_env(make_config(["env=jaxmarl", *overrides]).env)


def _agent_rows(env_obs: dict, agents, width: int) -> np.ndarray:
    """JaxMARL's observation dict as our padded [N, width] array, for comparison."""
    rows = []
    for a in agents:
        flat = np.asarray(env_obs[a], np.float32).ravel()
        rows.append(np.pad(flat, (0, width - flat.size)))
    return np.stack(rows)


def _same(actual, expected):
    """Equal up to float32 rounding (XLA may fuse the same arithmetic differently in two
    separately compiled programs, a last-bit difference)."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=1e-6)


def _episode_keys(seed: int, steps: int):
    k_reset, k_steps = jax.random.split(jax.random.PRNGKey(seed))
    return k_reset, jax.random.split(k_steps, steps)


def test_mpe_rollout_matches_jaxmarl_step_for_step():
    """3 episodes of random actions: our adapter and JaxMARL's own reset/step, same keys."""
    env = _ours("env.name=MPE_simple_spread_v3")
    ref = jaxmarl.make("MPE_simple_spread_v3")  # JaxMARL's defaults: max_steps = 25
    agents = list(ref.agents)
    assert env.episode_limit == ref.max_steps == 25
    assert (env.n_agents, env.n_actions, env.obs_dim) == (3, 5, 18)
    step, reset = jax.jit(env.step), jax.jit(env.reset)
    ref_step, ref_reset = jax.jit(ref.step), jax.jit(ref.reset)
    rng = np.random.default_rng(0)
    # JaxMARL's MPE ends its episodes on their 26th step (done = step count before it >= 25);
    # we cut them after episode_limit = 25 steps. Both are time limits: ours never says done.
    steps = env.episode_limit + 1
    for seed in range(3):
        k_reset, keys = _episode_keys(seed, steps)
        obs, state = reset(k_reset)
        ref_obs, ref_state = ref_reset(k_reset)
        _same(obs, _agent_rows(ref_obs, agents, env.obs_dim))
        _same(env.global_state(state), np.concatenate([ref_obs[a] for a in agents]))
        assert np.asarray(env.avail_actions(state)).all()  # MPE: every move is always allowed
        for t in range(steps):
            actions = rng.integers(0, 5, size=3)
            prev = ref_state
            obs, state, reward, done, _ = step(keys[t], state, jnp.asarray(actions))
            ref_obs, ref_state, ref_rew, ref_done, _ = ref_step(keys[t], ref_state,
                                                                {a: actions[i] for i, a in enumerate(agents)})
            # team reward: the sum of the agents' rewards
            np.testing.assert_allclose(reward, sum(float(ref_rew[a]) for a in agents), rtol=1e-6)
            assert not bool(done)  # MPE never terminates: its end is a time limit, which bootstraps
            if t < steps - 1:
                assert not bool(ref_done["__all__"])
                _same(obs, _agent_rows(ref_obs, agents, env.obs_dim))
                _same(env.global_state(state),
                                              np.concatenate([ref_obs[a] for a in agents]))
            else:
                # JaxMARL's time limit: it says done and returns the next episode's first
                # observation; ours is the real next observation, JaxMARL's before its reset.
                assert bool(ref_done["__all__"])
                last, _, _, _, _ = ref.step_env(jax.random.split(keys[t])[0], prev,
                                                {a: actions[i] for i, a in enumerate(agents)})
                _same(obs, _agent_rows(last, agents, env.obs_dim))
                assert not np.array_equal(obs, _agent_rows(ref_obs, agents, env.obs_dim))


def test_smax_rollout_matches_jaxmarl_including_real_terminations():
    """SMAX 3m against the heuristic enemy: random available actions until the battle ends."""
    from jaxmarl.environments.smax import map_name_to_scenario

    env = _ours("env.name=HeuristicEnemySMAX", "env.scenario=3m")
    ref = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario("3m"))
    agents = list(ref.agents)
    assert env.n_agents == 3 and env.meta["team_reward"] == "first"
    assert env.state_dim == np.asarray(ref.reset(jax.random.PRNGKey(0))[0]["world_state"]).size
    step, reset = jax.jit(env.step), jax.jit(env.reset)
    ref_step, ref_reset, ref_avail = jax.jit(ref.step), jax.jit(ref.reset), jax.jit(ref.get_avail_actions)
    rng = np.random.default_rng(1)
    terminated = 0
    for seed in range(3):
        k_reset, keys = _episode_keys(seed, env.episode_limit)
        obs, state = reset(k_reset)
        ref_obs, ref_state = ref_reset(k_reset)
        for t in range(env.episode_limit):
            _same(obs, _agent_rows(ref_obs, agents, env.obs_dim))
            _same(env.global_state(state), np.ravel(ref_obs["world_state"]))
            masks = ref_avail(ref_state)
            avail = np.asarray(env.avail_actions(state))
            _same(avail, np.stack([np.asarray(masks[a], bool) for a in agents]))
            actions = np.array([rng.choice(np.flatnonzero(row)) for row in avail])
            obs, state, reward, done, _ = step(keys[t], state, jnp.asarray(actions))
            ref_obs, ref_state, ref_rew, ref_done, _ = ref_step(keys[t], ref_state,
                                                                {a: actions[i] for i, a in enumerate(agents)})
            assert all(float(ref_rew[a]) == float(ref_rew[agents[0]]) for a in agents)  # one team reward
            np.testing.assert_allclose(reward, float(ref_rew[agents[0]]), rtol=1e-6)
            assert bool(done) == bool(ref_done["__all__"])
            if bool(done):  # a real termination: one side is wiped out
                terminated += 1
                # after it the adapter stays at the terminal state: no reward, still done
                again = step(keys[t], state, jnp.asarray(actions))
                _same(again[0], obs)
                assert float(again[2]) == 0.0 and bool(again[3])
                break
    assert terminated >= 1  # the comparison covered real terminations


def test_rollout_stops_rewards_at_termination():
    """The trainer's rollout on SMAX: nothing recorded after the terminal step."""
    cfg = make_config(["algo=vdn", "env=jaxmarl", "env.name=HeuristicEnemySMAX", "env.scenario=3m"])
    env = make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    params = algo.agents.init(jax.random.PRNGKey(0))
    episode, ret, _ = jax.jit(lambda k: run_episode(env, algo.agents, params, k, 1.0))(jax.random.PRNGKey(3))
    mask, term = np.asarray(episode.mask), np.asarray(episode.terminated)
    end = int(np.argmax(term))
    assert term.sum() == 1 and mask[: end + 1].all() and not mask[end + 1:].any()
    assert np.isfinite(np.asarray(episode.obs)).all()
    np.testing.assert_allclose(float(ret), np.asarray(episode.reward)[: end + 1].sum(), rtol=1e-6)


def test_time_limit_is_ours_and_not_terminal():
    env = _ours("env.name=MPE_simple_spread_v3", "env.episode_limit=40")
    assert env.episode_limit == 40
    assert env.meta["jaxmarl_env"].max_steps == 41  # JaxMARL's own clock never ends the episode
    assert env.meta["jaxmarl_env"].local_ratio == 0.5
    _, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(40):
        _, state, _, done, _ = step(jax.random.PRNGKey(t), state, jnp.zeros(3, jnp.int32))
        assert not bool(done)


@pytest.mark.parametrize("overrides,fragment", [
    (["env.name=MPE_simple_spread_v3", "env.kwargs.action_type=Continuous"], "need discrete actions"),
    (["env.name=MPE_nonexistent_v9"], "jaxmarl has no environment"),
    (["env.name=HeuristicEnemySMAX", "env.scenario=99z"], "not a SMAX map"),
    (["env.name=MPE_simple_spread_v3", "env.team_reward=max"], "env.team_reward"),
    # (MPE's constructors take **kwargs and ignore unknown ones; SMAX's refuse them)
    (["env.name=HeuristicEnemySMAX", "env.kwargs.no_such_argument=1"], "no_such_argument"),
])
def test_bad_settings_are_user_errors(overrides, fragment, capsys):
    with pytest.raises(UserError, match=fragment):
        _ours(*overrides)
    code = main(["train", "env=jaxmarl", "progress=false", *overrides])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0]


def test_qtran_imports_without_jaxmarl():
    code = ("import sys, qtran, qtran.run, qtran.config, qtran.envs; "
            "sys.exit(any(m.split('.')[0] in ('jaxmarl', 'pettingzoo', 'mpe2') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _still_return(cfg, episodes=512) -> float:
    """Mean return of doing nothing: every agent takes MPE's no-op (action 0) at every step.
    On simple_spread this beats acting at random (about -72 against -79 per 25-step episode),
    so it is the bar a learned policy has to clear."""
    env = make_env(cfg.env)
    still = jnp.zeros(env.n_agents, jnp.int32)

    def one(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = env.reset(k_reset)

        def step(carry, k):
            state, ended = carry
            _, state, reward, done, _ = env.step(k, state, still)
            return (state, ended | done), jnp.where(ended, 0.0, reward)

        _, rewards = jax.lax.scan(step, (state, jnp.bool_(False)), jax.random.split(k_steps, env.episode_limit))
        return rewards.sum()

    return float(np.mean(jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(123), episodes))))


LEARN = ["algo=vdn", "env=jaxmarl", "env.name=MPE_simple_spread_v3", "seeds=3", "steps=6000", "n_envs=8",
         "updates_per_step=0.25", "batch_size=128", "lr=1e-3", "target_update_interval=50",
         "eval.interval=3000", "eval.episodes=64", "progress=false"]


# Margins over doing nothing (about -72). Measured at this budget, seeds 0-2: final greedy
# returns -57.3, -62.6, -60.0 (margins 14.8, 9.5, 12.1; mean 12.1). The old bar, random + 5,
# was about -74: the same settings evaluated every 1,500 steps stood at -74.8, -71.8, -88.4
# after 1,500 steps, no better than doing nothing.
STILL_MARGIN, MEAN_MARGIN = 5.0, 8.0


@pytest.mark.slow
def test_vdn_learns_mpe_simple_spread():
    """6,000 steps of VDN, 3 seeds: every seed's greedy return beats its untrained greedy policy
    and doing nothing (measured here, about -72) by a margin, not just acting at random."""
    cfg = make_config(LEARN)
    summary = train(cfg, write=False)
    curve = np.asarray(summary["eval_curve"]["returns"])  # [evaluations, seeds]
    still = _still_return(cfg)
    first, final = curve[0], curve[-1]
    assert (final > first + 20).all(), (first, final)
    assert (final > still + STILL_MARGIN).all(), (still, final)
    assert final.mean() > still + MEAN_MARGIN, (still, final)
