"""The PettingZoo adapter (qtran.envs.pettingzoo_adapter) and the host loop that trains on it
(qtran.host_loop): trajectories equal the wrapped environment's own, step for step; action
masks honoured; termination and truncation kept apart; the run directory is a normal one;
and a short VDN run on MPE simple_spread learns a policy clearly better than doing nothing."""

import json
import textwrap

import jax
import numpy as np
import pytest

from qtran.algorithms import make_algorithm
from qtran.cli import main
from qtran.config import load_config, make_config
from qtran.envs import make_env
from qtran.envs.pettingzoo_adapter import ParallelAdapter, load_parallel_env
from qtran.errors import UserError
from qtran.host_loop import HostTrainer
from qtran.run import fit, train

MPE = "mpe2.simple_spread_v3"


def test_mpe_rollout_matches_pettingzoo_step_for_step():
    """3 episodes of random actions, same seeds: the adapter and the raw parallel env."""
    ours = ParallelAdapter(load_parallel_env(MPE))
    raw = load_parallel_env(MPE)
    agents = list(raw.possible_agents)
    assert ours.agents == agents and (ours.n_agents, ours.n_actions, ours.obs_dim) == (3, 5, 18)
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, state, avail = ours.reset(seed=seed)
        ref_obs, _ = raw.reset(seed=seed)
        np.testing.assert_array_equal(obs, np.stack([ref_obs[a] for a in agents]))
        np.testing.assert_array_equal(state, raw.state())
        assert avail.all()
        for t in range(100):
            actions = rng.integers(0, 5, size=3)
            obs, state, avail, reward, terminated, ended = ours.step(actions)
            ref_obs, ref_rew, ref_term, ref_trunc, _ = raw.step({a: int(actions[i]) for i, a in enumerate(agents)})
            np.testing.assert_array_equal(obs, np.stack([ref_obs[a] for a in agents]))
            np.testing.assert_array_equal(state, raw.state())
            assert reward == pytest.approx(sum(ref_rew[a] for a in agents), rel=1e-6)
            assert not any(ref_term.values())  # MPE never terminates ...
            assert ended == all(ref_trunc.values()) and ended == (not raw.agents)
            assert not terminated  # ... its end is a time limit (max_cycles): not terminal
            if ended:
                break
        assert t + 1 == 25  # max_cycles


FAKE_ENV = textwrap.dedent('''
    """A two-agent parallel env with action masks, an agent leaving early and real terminations."""
    import numpy as np
    from gymnasium import spaces
    from pettingzoo import ParallelEnv


    class Fake(ParallelEnv):
        metadata = {"name": "fake_v0"}

        def __init__(self, limit=6, leave_at=2, finish_at=None):
            self.possible_agents = ["a", "b"]
            self.limit, self.leave_at, self.finish_at = limit, leave_at, finish_at
            self.agents = []

        def observation_space(self, agent):
            return spaces.Box(-100, 100, (3,) if agent == "a" else (2,), np.float32)

        def action_space(self, agent):
            return spaces.Discrete(4 if agent == "a" else 3)

        def mask(self, agent):
            m = np.zeros(4 if agent == "a" else 3, np.int8)
            if agent == "a":
                m[0] = m[1 + self.t % 3] = 1  # changes with time
            else:
                m[2] = 1  # b may only ever take action 2
            return m

        def obs(self, agent):
            x = np.array([self.t, self.seed, 1.0], np.float32)
            return x if agent == "a" else x[:2] * -1

        def reset(self, seed=None, options=None):
            self.t, self.seed = 0, float(seed or 0) % 97
            self.agents = list(self.possible_agents)
            return ({a: self.obs(a) for a in self.agents},
                    {a: {"action_mask": self.mask(a)} for a in self.agents})

        def step(self, actions):
            assert set(actions) == set(self.agents), (actions, self.agents)
            for a, u in actions.items():
                if not self.mask(a)[u]:
                    raise ValueError(f"illegal action {u} for {a} at t={self.t}")
            self.t += 1
            rewards = {a: float(u) for a, u in actions.items()}
            terms = {a: (a == "b" and self.t == self.leave_at) or self.t == self.finish_at for a in self.agents}
            truncs = {a: self.t == self.limit and not terms[a] for a in self.agents}
            obs = {a: self.obs(a) for a in self.agents}
            infos = {a: {"action_mask": self.mask(a)} for a in self.agents}
            self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
            return obs, rewards, terms, truncs, infos


    def parallel_env(**kwargs):
        return Fake(**kwargs)
''')


@pytest.fixture(scope="module")
def fake_module(tmp_path_factory):
    """The fake env as an importable module (env.name is a module path)."""
    import sys

    folder = tmp_path_factory.mktemp("fake_pz")
    (folder / "qtran_fake_pz.py").write_text(FAKE_ENV)
    sys.path.insert(0, str(folder))
    yield "qtran_fake_pz"
    sys.path.remove(str(folder))
    sys.modules.pop("qtran_fake_pz", None)


def test_masks_leaving_agents_and_termination_versus_truncation(fake_module):
    env = ParallelAdapter(load_parallel_env(fake_module, {"limit": 6, "leave_at": 2}))
    assert (env.n_agents, env.n_actions, env.obs_dim, env.state_dim) == (2, 4, 3, 5)
    obs, state, avail = env.reset(seed=5)
    np.testing.assert_array_equal(obs, [[0, 5, 1], [0, -5, 0]])  # b's shorter row padded with 0
    np.testing.assert_array_equal(state, [0, 5, 1, 0, -5])  # no state(): observations joined
    np.testing.assert_array_equal(avail, [[1, 1, 0, 0], [0, 0, 1, 0]])  # the masks; b has 3 actions
    obs, state, avail, reward, terminated, ended = env.step([1, 2])
    assert reward == 3.0 and not terminated and not ended
    np.testing.assert_array_equal(avail, [[1, 0, 1, 0], [0, 0, 1, 0]])  # a's mask moved on
    obs, state, avail, reward, terminated, ended = env.step([2, 2])  # b terminates here
    assert not ended and reward == 4.0
    np.testing.assert_array_equal(obs[1], [-2, -5, 0])  # b's last observation, as returned
    obs, state, avail, reward, terminated, ended = env.step([0, 1])  # b's action is not sent
    np.testing.assert_array_equal(obs[1], 0)  # gone: zeros
    np.testing.assert_array_equal(avail[1], [1, 0, 0, 0])  # and only the unsent placeholder
    assert reward == 0.0
    for _ in range(3):
        *_, terminated, ended = env.step([0, 0])
    assert ended and not terminated  # a was truncated at the limit: bootstrap, not terminal

    env = ParallelAdapter(load_parallel_env(fake_module, {"limit": 6, "leave_at": 9, "finish_at": 3}))
    env.reset(seed=0)
    for t in range(3):
        *_, terminated, ended = env.step([0, 2])
        assert ended == terminated == (t == 2)  # every agent terminated: a terminal state


def _host_run(out, module, *extra):
    return fit(make_config([
        "algo=qmix", "env=pettingzoo", f"env.name={module}", "env.kwargs.limit=6", "env.kwargs.leave_at=2",
        "env.episode_limit=8", "seeds=2", "steps=160", "n_envs=2", "warmup_steps=32", "batch_size=8",
        "eval.episodes=3", "eval.interval=80", "progress=false", "tensorboard=false", f"out={out}", *extra]))


@pytest.fixture(scope="module")
def host_run(tmp_path_factory, fake_module):
    out = tmp_path_factory.mktemp("host") / "run"
    return out, *_host_run(out, fake_module)


def test_host_loop_honours_masks_and_keeps_truncation_apart(host_run, fake_module):
    """The fake env raises on any masked action, so finishing proves the masks were honoured
    while acting (randomly in the warm-up, greedily after); replay holds the episodes right."""
    _, states, summary = host_run
    data = states.buffer.data
    filled = np.asarray(states.buffer.size)
    assert (filled == 160 // 8).all()  # one episode per env per iteration, every iteration
    mask = np.asarray(data.mask)[:, :20]  # [runs, episodes, T]
    assert (mask.sum(-1) == 6).all()  # the env's own limit (6) before our episode_limit (8)
    assert not np.asarray(data.terminated).any()  # truncation: never terminal
    actions = np.asarray(data.actions)[:, :20]
    assert set(np.unique(actions[..., 1][:, :, :2])) == {2}  # b's only legal action while present
    rewards = np.asarray(data.reward)[:, :20]
    assert (rewards[mask == 0] == 0).all()
    # padding after the end repeats the last step (a frozen environment), so it stays finite
    obs = np.asarray(data.obs)[:, :20]
    np.testing.assert_array_equal(obs[:, :, 7], obs[:, :, 6])
    assert summary["env"] == f"pettingzoo:{fake_module}" and summary["host_loop"] is True
    assert len(summary["eval_curve"]["steps"]) == 3 and summary["steps"] == 160


@pytest.mark.parametrize("episode_limit, last", [(8, 5), (4, 3)])
def test_time_limit_terminal_ends_the_task_at_either_limit(tmp_path, fake_module, episode_limit, last):
    """The env's own limit (6 steps) or ours (env.episode_limit=4): the last stored step is
    terminal with time_limit=terminal, and nothing else is."""
    states, _ = _host_run(tmp_path / "run", fake_module, "time_limit=terminal", f"env.episode_limit={episode_limit}",
                             "steps=80", "eval.interval=80")
    terminated = np.asarray(states.buffer.data.terminated)[:, :80 // episode_limit]
    expected = np.zeros(terminated.shape[-1], bool)
    expected[last] = True
    assert (terminated == expected).all()


def _same_trees(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_host_loop_copies_the_target_exactly_every_interval(fake_module):
    """The host loop's own target copy (`HostTrainer._learn_runs`, not the compiled Trainer's
    chunk): the target equals the online networks, bit for bit, right after every
    target_update_interval-th update and moves at no other update.

    One iteration = one 4-step episode and 2 updates (updates_per_step 0.5); the first is
    warm-up (warmup_steps=4). With target_update_interval=3 the copies fall at updates 3, 6,
    9 and 12: in the middle of the 2nd and 4th training iterations (the target then lags the
    online networks by one update) and at the end of the 3rd and 6th (they are equal).
    QTRAN-base: its joint networks have parameters too, copied with the agents'."""
    cfg = make_config(["algo=qtran-base", "env=pettingzoo", f"env.name={fake_module}", "env.kwargs.limit=6",
                       "env.kwargs.leave_at=2", "env.episode_limit=4", "steps=28", "warmup_steps=4",
                       "updates_per_step=0.5", "target_update_interval=3", "batch_size=4", "buffer_size=16",
                       "agent.hidden=8", "qtran.hidden=8", "lr=0.01", "eval.episodes=1", "progress=false"])
    env = make_env(cfg.env)
    host = HostTrainer(cfg, env, make_algorithm(cfg, env), env.meta["make_adapter"])
    assert (host.schedule.updates_per_iter, host.schedule.first_train_iter, host.schedule.total_iters) == (2, 1, 7)
    states = host.trainer.init_runs([0])
    host.compile(states)
    assert _same_trees(states.params, states.target_params)
    equal, target_moved = [], []
    for it in range(host.schedule.total_iters):
        old_target = jax.device_get(states.target_params)  # the iteration donates the state's buffers
        states, _ = host.iteration(states, it, [0])
        params, target = jax.device_get((states.params, states.target_params))
        equal.append(_same_trees(params, target))
        target_moved.append(not _same_trees(old_target, target))
    # iteration:           warm-up  u1,2   u3,4   u5,6   u7,8   u9,10  u11,12
    assert equal ==        [True,   False, False, True,  False, False, True]  # noqa: E222
    assert target_moved == [False,  False, True,  True,  False, True,  True]


def test_host_run_directory_matches_compiled_runs(tmp_path, host_run, fake_module):
    run, _, summary = host_run
    compiled = train(make_config(["algo=qmix", "env=predator_prey", "env.episode_limit=2", "steps=4",
                                  "warmup_steps=0", "eval.episodes=1", "agent.hidden=4", "progress=false",
                                  "tensorboard=false", f"out={tmp_path / 'compiled'}"]))
    missing = set(compiled) - set(summary)
    assert not missing, missing
    for name in ("config.yaml", "metrics.csv", "params.npz", "eval_episodes.npz", "summary.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "summary.json").read_text())["final_eval_return"] == summary["final_eval_return"]
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == (tmp_path / "compiled" / "metrics.csv").read_text().splitlines()[0]
    cfg = load_config(run)  # the saved config reloads, outside-environment kwargs included
    assert cfg.env.task == fake_module and dict(cfg.env.kwargs) == {"limit": 6, "leave_at": 2}
    # determinism: the same config gives the same evaluations
    _, again = _host_run(tmp_path / "again", fake_module)
    assert again["eval_curve"] == summary["eval_curve"]


@pytest.mark.parametrize("overrides,fragment", [
    (["env.name=pettingzoo.mpe.simple_spread_v3"], "mpe2"),  # moved out of PettingZoo in 1.25
    (["env.name=no_such_module_xyz"], "cannot import"),
    (["env.name=json"], "no parallel_env"),
    ([f"env.name={MPE}", "env.kwargs.continuous_actions=true"], "need discrete actions"),
    ([f"env.name={MPE}", "env.team_reward=max"], "env.team_reward"),
    ([f"env.name={MPE}", "env.kwargs.bogus=1"], "bogus"),
])
def test_bad_settings_are_user_errors(overrides, fragment, capsys):
    with pytest.raises(UserError, match=fragment):
        make_env(make_config(["env=pettingzoo", *overrides]).env)
    code = main(["train", "env=pettingzoo", "progress=false", *overrides])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0]


def test_compiled_paths_refuse_a_host_env():
    env = make_env(make_config(["env=pettingzoo", f"env.name={MPE}"]).env)
    with pytest.raises(UserError, match="host_loop"):
        env.reset(None)


def _still_return(episodes=256) -> float:
    """Mean return of doing nothing (every agent's no-op, action 0, at every step): on
    simple_spread it beats acting at random, so it is the bar a learned policy must clear."""
    env = ParallelAdapter(load_parallel_env(MPE))
    total = 0.0
    for e in range(episodes):
        env.reset(seed=10_000 + e)
        ended = False
        while not ended:
            *_, reward, _, ended = env.step(np.zeros(3, np.int64))
            total += reward
    return total / episodes


# As in tests/test_jaxmarl_adapter.py. Measured here, seeds 0-2: final -57.4, -59.5, -62.2
# against -71.3 for doing nothing (margins 13.9, 11.8, 9.1; mean 11.6).
STILL_MARGIN, MEAN_MARGIN = 5.0, 8.0


@pytest.mark.slow
def test_vdn_learns_mpe_simple_spread_through_the_host_loop():
    """The same budget and bars as the JaxMARL adapter's learning test, with the environment
    stepping in Python: every seed beats its untrained greedy policy and doing nothing."""
    summary = train(make_config([
        "algo=vdn", "env=pettingzoo", f"env.name={MPE}", "seeds=3", "steps=6000", "n_envs=8",
        "updates_per_step=0.25", "batch_size=128", "lr=1e-3", "target_update_interval=50",
        "eval.interval=3000", "eval.episodes=64", "progress=false"]), write=False)
    curve = np.asarray(summary["eval_curve"]["returns"])
    still = _still_return()
    first, final = curve[0], curve[-1]
    assert (final > first + 20).all(), (first, final)
    assert (final > still + STILL_MARGIN).all(), (still, final)
    assert final.mean() > still + MEAN_MARGIN, (still, final)
