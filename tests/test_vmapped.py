"""Several models in one vmapped program, each as if it had run alone."""

import json
import shutil

import jax
import numpy as np
import pytest

from gan_jax import train
from gan_jax import errors
from experiments import toy_ring


def _config(**overrides):
  c = toy_ring.get_config('smoke')
  c.num_steps = 100
  c.update(overrides)
  return c


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def _rows(workdir):
  return [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]


def test_model_i_of_a_vmapped_run_equals_it_trained_alone(tmp_path):
  """Two models (seed, lr and D's b1 differ) in one program vs model 1 alone."""
  configs = [_config(seed=0), _config(seed=5)]
  configs[1].optim.lr = 3e-4
  configs[1].optim.d_b1 = 0.0
  dirs = [tmp_path / f'm{i}' for i in range(2)]
  stacked = train.train_models(configs, [str(d) for d in dirs])
  assert np.asarray(stacked.step).tolist() == [100, 100]
  for i in (1,):
    alone = train.train_and_evaluate(configs[i], str(tmp_path / f'alone{i}'))
    model_i = jax.tree.map(lambda x, i=i: x[i], stacked)
    for a, b in zip(_leaves(model_i), _leaves(alone)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    # Its run directory holds what the solo run's holds, to float rounding.
    vm, solo = _rows(dirs[i]), _rows(tmp_path / f'alone{i}')
    assert [r['step'] for r in vm] == [r['step'] for r in solo]
    for r, s in zip(vm, solo):
      for k in ('d_loss', 'g_loss', 'eval/fd'):
        if k in s:
          assert r[k] == pytest.approx(s[k], rel=1e-3, abs=1e-5), k
    assert json.loads((dirs[i] / 'config.json').read_text())['seed'] == (
      configs[i].seed
    )
    assert (dirs[i] / 'results.json').exists()
    assert (dirs[i] / 'samples' / 'step_000100.png').exists()
  # The models did differ: different seeds give different parameters.
  p0, p1 = (jax.tree.leaves(stacked.g_params)[0][i] for i in (0, 1))
  assert np.abs(np.asarray(p0) - np.asarray(p1)).max() > 1e-3


def test_num_models_writes_one_run_per_seed_and_resumes_exactly(tmp_path):
  """num_models=2: model_0/model_1 with seeds 3, 4; extending is resuming."""
  short = train.train_and_evaluate(
    _config(seed=3, num_models=2), str(tmp_path / 'run')
  )
  assert np.asarray(short.step).tolist() == [100, 100]
  for i in (0, 1):
    config = json.loads(
      (tmp_path / 'run' / f'model_{i}' / 'config.json').read_text()
    )
    assert config['seed'] == 3 + i and config['num_models'] == 1
  resumed = train.train_and_evaluate(
    _config(seed=3, num_models=2, num_steps=200), str(tmp_path / 'run')
  )
  straight = train.train_and_evaluate(
    _config(seed=3, num_models=2, num_steps=200), str(tmp_path / 'straight')
  )
  for a, b in zip(_leaves(resumed), _leaves(straight)):
    np.testing.assert_array_equal(a, b)


def test_members_killed_in_a_save_go_back_to_their_common_step(tmp_path):
  """A kill inside the save of step 200 left model_0 with [100, 200] and a
  best checkpoint of step 200, model_1 with [100] (and a kill inside the
  first save, no checkpoint at all): the rerun takes both back to the step
  they share, saves those steps again, and ends as an uninterrupted run."""
  config = _config(seed=3, num_models=2, num_steps=300, checkpoint_every=100)
  config.eval.every = 100
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  short = _config(seed=3, num_models=2, num_steps=200, checkpoint_every=100)
  short.eval.every = 100
  train.train_and_evaluate(short, str(tmp_path / 'short'))
  for keep in (100, 0):
    killed = tmp_path / f'killed_{keep}'
    shutil.copytree(tmp_path / 'short', killed)  # the run, before the kill
    for step in (200, 100):
      if step > keep:
        (killed / 'model_1' / 'checkpoints' / str(step)).rename(
          tmp_path / f'gone_{keep}_{step}'
        )
    resumed = train.train_and_evaluate(config, str(killed))
    for a, b in zip(_leaves(resumed), _leaves(straight)):
      np.testing.assert_array_equal(a, b)


def test_models_differing_in_other_fields_are_refused(tmp_path):
  with pytest.raises(errors.ConfigError, match='differ only in'):
    train.train_models(
      [_config(), _config(loss='hinge')],
      [str(tmp_path / 'a'), str(tmp_path / 'b')],
    )
  assert not (tmp_path / 'a').exists()
