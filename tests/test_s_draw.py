"""Gaussian squeeze's `env.s_draw`: s drawn once, once per run (from the run's seed), or every
episode; the per-run reachability record; the single-state fast path with s drawn per run."""

import itertools
import math

import jax
import numpy as np
import pytest

from qtran.config import make_config
from qtran.envs import make_env
from qtran.envs.gaussian_squeeze import (
    GaussianSqueezeConfig, make_gaussian_squeeze, reachability, reference_points, s_draw_of,
)
from qtran.errors import UserError
from qtran.run import fit
from qtran.train import run_key_of_seed

MGS = ((8.0, 5.0), (0.5, 1.0))
TINY = ["env=gaussian_squeeze", "env.domains=mgs", "env.equal_s=true", "env.obs=all", "env.s_seed=null",
        "steps=64", "warmup_steps=32", "n_envs=8", "eval.interval=32", "eval.episodes=4", "buffer_size=64",
        "batch_size=8", "progress=false", "tensorboard=false", "shard=false", "compile_cache=false"]


def g_by_hand(x):
    return x * math.exp(-((x - 8.0) ** 2) / 0.25) + x * math.exp(-((x - 5.0) ** 2))


def train_per_run(seed, seeds, tmp_path, name):
    cfg = make_config(TINY + ["env.s_draw=per_run", f"seed={seed}", f"seeds={seeds}", "algo=vdn",
                              f"out={tmp_path / name}"])
    return fit(cfg)


def buffer_s(states) -> np.ndarray:
    """s seen by every stored episode of every run: [runs, episodes] (equal s: agent 0's)."""
    buf = states.buffer
    obs = np.asarray(buf.data.obs)[:, :, 0, 0, 0]  # [runs, slots], step 0, agent 0, first s
    filled = np.asarray(buf.size)
    return [obs[r, :filled[r]] for r in range(obs.shape[0])]


@pytest.fixture(scope="module")
def per_run(tmp_path_factory):
    """Seeds 0, 1, 2 trained together, and seeds 1, 2 alone (two short VDN runs)."""
    tmp = tmp_path_factory.mktemp("per_run")
    return train_per_run(0, 3, tmp, "a"), train_per_run(1, 2, tmp, "b")


def test_per_run_s_differs_between_seeds_repeats_for_a_seed_and_never_changes(per_run):
    (states_a, summary_a), (_, summary_b) = per_run
    s_a = [r["s"] for r in summary_a["env_runs"]]
    s_b = [r["s"] for r in summary_b["env_runs"]]
    assert len({tuple(s) for s in s_a}) == 3  # different seeds, different s
    assert s_b == s_a[1:]  # the same seed, the same s, whatever else trains beside it
    for s_run, stored in zip(s_a, buffer_s(states_a)):
        assert len(stored) == 64  # 8 iterations of 8 episodes, all kept
        np.testing.assert_allclose(stored, s_run[0], rtol=1e-6)  # every episode of the run: its s
        assert len(set(s_run)) == 1  # equal_s: one value for every agent
    # the summary's record is the s the trainer used: from the seed alone
    env = make_env(make_config(TINY + ["env.s_draw=per_run"]).env)
    assert env.run_info(run_key_of_seed(2))["s"] == s_a[2]


def test_per_run_s_also_holds_in_evaluation_episodes(per_run):
    """Evaluation starts its episodes through the same per-run reset: the recorded best
    reward bounds every evaluation reward of that run."""
    _, summary = per_run[0]
    returns = np.asarray(summary["eval_curve"]["returns"])  # [evaluations, runs]
    best = np.asarray([r["best_reward"] for r in summary["env_runs"]])
    assert np.all(returns <= best[None, :] + 1e-3)


@pytest.mark.slow
def test_per_episode_draws_anew_and_once_shares_one_s(tmp_path):
    cfg = make_config(TINY + ["env.s_draw=per_episode", "seeds=2", "algo=vdn", f"out={tmp_path / 'p'}"])
    states, summary = fit(cfg)
    assert "env_runs" not in summary and "expected_best" in summary["env_reference"]
    assert all(len(np.unique(s)) > 4 for s in buffer_s(states))
    cfg = make_config(TINY[:4] + TINY[5:] + ["env.s_seed=4", "seeds=2", "algo=vdn", f"out={tmp_path / 'o'}"])
    states, summary = fit(cfg)
    assert summary["env_runs"][0] == summary["env_runs"][1]
    stored = buffer_s(states)
    assert np.all(stored[0] == stored[0][0]) and np.all(stored[1] == stored[0][0])


def test_reachability_by_hand_equal_s():
    """Ten agents with s = 0.128: x = 0.128 k, k = 0..90. Best: k = 63, x = 8.064; the pitfall's
    side best: k = 40, x = 5.12 (both by hand below). s = 0.05: x <= 4.5, so neither peak."""
    ref = reference_points(*MGS, 18.0)
    found = reachability([0.128] * 10, 10, 1.0, *MGS, ref)
    assert found["best_x"] == pytest.approx(8.064, abs=1e-3)
    assert found["best_reward"] == pytest.approx(g_by_hand(8.064), abs=1e-3)
    assert found["pitfall_side_best"] == pytest.approx(g_by_hand(5.12), abs=1e-3)
    assert found["optimum_reachable"] and found["pitfall_reachable"]
    low = reachability([0.05] * 10, 10, 1.0, *MGS, ref)
    assert low["best_x"] == pytest.approx(4.5, abs=1e-3) and low["best_reward"] == pytest.approx(g_by_hand(4.5), abs=1e-3)
    assert not low["optimum_reachable"] and not low["pitfall_reachable"]
    assert low["optimum_side_best"] == 0.0  # no joint action reaches beyond the valley (x ~ 6.93)


def test_reachability_matches_every_joint_action_of_a_small_game():
    """Three agents, unequal s, every joint action enumerated."""
    s, n_actions = [0.9, 0.35, 0.6], 6
    ref = reference_points(*MGS, 18.0)
    found = reachability(s, n_actions, 1.0, *MGS, ref)
    xs = [sum(si * u for si, u in zip(s, us)) for us in itertools.product(range(n_actions), repeat=3)]
    rewards = [g_by_hand(x) for x in xs]
    assert found["best_reward"] == pytest.approx(max(rewards), abs=2e-3)
    assert found["pitfall_side_best"] == pytest.approx(max(g for x, g in zip(xs, rewards) if x < 6.93), abs=2e-3)


@pytest.mark.parametrize("fields, message", [
    ({"s_draw": "once"}, "needs env.s_seed"),
    ({"s_draw": "per_run", "s_seed": 3}, "set env.s_seed=null"),
    ({"s_draw": "sometimes"}, "is unknown"),
    ({"s_seed": True}, "integer or null"),
])
def test_contradictory_settings_are_refused(fields, message):
    with pytest.raises(UserError, match=message):
        make_gaussian_squeeze(GaussianSqueezeConfig(**fields))


def test_s_seed_alone_keeps_its_old_meaning():
    assert s_draw_of(GaussianSqueezeConfig(s_seed=2)) == "once"
    assert s_draw_of(GaussianSqueezeConfig()) == "per_episode"
    env = make_gaussian_squeeze(GaussianSqueezeConfig(s_seed=2))
    assert env.single_state and env.reset_for_run is None and env.name.endswith(":s2")


@pytest.mark.parametrize("algo", ["qtran-alt", "qmix"])
def test_fast_path_equals_slow_path_with_s_per_run(algo, per_run):
    """The single-state cuts read each run's one observation from its batch: with s drawn per
    run, losses and gradients on a batch from a run's own replay (runs 0 and 1: different s)
    equal the per-sample path's, at the same (fresh, jittered) parameters."""
    from qtran.algorithms import make_algorithm
    from qtran.algorithms.base import single_state_cuts
    from qtran.replay import sample

    buffers = per_run[0][0].buffer
    results = []
    for cuts in ("true", "false"):
        cfg = make_config(TINY + ["env.s_draw=per_run", f"algo={algo}", f"compute_cuts={cuts}"])
        env = make_env(cfg.env)
        algo_fns = make_algorithm(cfg, env)
        assert single_state_cuts(cfg, env) == (cuts == "true")
        key = jax.random.PRNGKey(7)
        params = {"agent": algo_fns.agents.init(key), "mixer": algo_fns.init_mixer(jax.random.fold_in(key, 1))}
        leaves, tree = jax.tree.flatten(params)
        params = jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(jax.random.fold_in(key, i), x.shape)
                                           for i, x in enumerate(leaves)])
        found = []
        loss_and_grads = jax.jit(jax.value_and_grad(algo_fns.loss, has_aux=True))
        for r in range(2):  # a batch from each run's own buffer
            batch = sample(jax.tree.map(lambda x: x[r], buffers), jax.random.PRNGKey(r), 16)
            (loss, _), grads = loss_and_grads(params, params, batch)
            found.append((loss, grads))
        results.append(found)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(*results):
        np.testing.assert_allclose(loss_a, loss_b, rtol=2e-4, atol=2e-5)
        for ga, gb in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
            np.testing.assert_allclose(ga, gb, rtol=2e-4, atol=2e-5 * max(1.0, float(np.abs(gb).max())))


def test_a_saved_per_run_policy_replays_with_its_own_s(per_run):
    """`qtran eval` and `qtran render` reset a saved run as the trainer did: with its own s."""
    from qtran.saved_policy import load_policy

    _, summary = per_run[0]
    for run in range(len(summary["seeds"])):
        _, _, _, _, reset, seed = load_policy(summary["run_dir"], run)
        obs, _ = reset(jax.random.PRNGKey(11))
        assert seed == summary["seeds"][run]
        np.testing.assert_allclose(np.asarray(obs)[0], summary["env_runs"][run]["s"], rtol=1e-6)
