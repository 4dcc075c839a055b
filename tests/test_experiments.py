"""Each experiment file's smoke variant runs end to end through
train_and_evaluate and leaves a complete run directory.

Study files (get_hyper): the full and smoke configs validate; the sweep has
the stated number of distinct points, points differing only in seeds (seed,
data.subset_seed) are adjacent, and every point applied to the config
validates and equals the
config the file gives for that point's arguments (so fields that depend on
the loss, such as n_critic or weight clipping, change with it).
"""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from gan_jax import config as config_lib
from gan_jax import errors, losses, sweep, train
from gan_jax import validate
from experiments import (
  augmentation_mnist,
  cifar10_sngan,
  data_efficient_mnist,
  goodfellow2014_mnist,
  lucic2018_mnist,
  metz2017_ring,
  mnist_dcgan,
  mnist_dcgan_torch,
  mnist_recipe,
  mode_collapse,
  saturation,
  toy_ring,
)

# module -> (points of the full sweep, of the smoke sweep, the point fields
# that are also get_config arguments)
STUDIES = {
  'augmentation_mnist': (augmentation_mnist, 9, 2, ('seed',)),
  'data_efficient_mnist': (data_efficient_mnist, 15, 2, ('seed',)),
  'goodfellow2014_mnist': (goodfellow2014_mnist, 3, 2, ('seed',)),
  'saturation': (saturation, 6, 4, ('loss', 'seed')),
  'lucic2018_mnist': (lucic2018_mnist, 24, 6, ('loss',)),
  'mode_collapse': (mode_collapse, 80, 4, ('loss', 'seed')),
  'metz2017_ring': (metz2017_ring, 6, 4, ('seed',)),
  'mnist_recipe': (mnist_recipe, 10, 3, ('seed',)),
}


def _apply(config, point):
  """A copy of `config` with a sweep point's dotted fields set; every field
  must exist already (a misspelt field would otherwise add a new one)."""
  config = config.copy_and_resolve_references()
  for field, value in point.items():
    config_lib.set_field(config, field, value)
  return config


@pytest.mark.parametrize('smoke', [False, True], ids=['full', 'smoke'])
@pytest.mark.parametrize('study', sorted(STUDIES))
def test_study_sweep_points_are_valid_configs(study, smoke):
  module, n_full, n_smoke, arg_fields = STUDIES[study]
  arg = 'smoke' if smoke else None
  base = module.get_config(arg)
  validate.validate(base)
  points = module.get_hyper(arg)
  assert len(points) == (n_smoke if smoke else n_full)
  assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)
  # Groups of points equal but for the seed are contiguous runs.
  groups = [sweep.group_name(p) for p in points]
  runs = [g for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
  assert len(runs) == len(set(groups)), groups
  for point in points:
    config = _apply(base, point)
    validate.validate(config)
    args = [f'{f}={point[f]}' for f in arg_fields] + (
      ['smoke'] if smoke else []
    )
    direct = module.get_config(','.join(args))
    rest = {f: v for f, v in point.items() if f not in arg_fields}
    assert _apply(direct, rest).to_dict() == config.to_dict(), point


def test_lucic2018_objectives_and_their_fields():
  """Each objective's paper settings: n_critic 5 for the WGANs (Arjovsky et
  al. 2017; Gulrajani et al. 2017), clipping at 0.01 for WGAN only, layer
  norm in D for the gradient penalties, BatchNorm otherwise."""
  points = lucic2018_mnist.get_hyper(None)
  fields = {
    p['loss']: (p['d_steps'], p['d_weight_clip'], p['model.d.norm'])
    for p in points
  }
  assert fields == {
    'minimax': (1, 0.0, 'batch'),
    'non_saturating': (1, 0.0, 'batch'),
    'least_squares': (1, 0.0, 'batch'),
    'wasserstein': (5, 0.01, 'batch'),
    'wasserstein_gp': (5, 0.0, 'layer'),
    'dragan': (1, 0.0, 'layer'),
  }
  assert set(fields) <= set(losses.LOSSES)
  assert {p['optim.lr'] for p in points} == set(lucic2018_mnist.LRS)
  for point in points:
    config = _apply(lucic2018_mnist.get_config(), point)
    assert config.eval.best_metric == 'fd'
    assert config.penalty_weight is None  # the loss's own lambda (10)


def _check_run(workdir, last_step):
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]
  assert rows[-1]['step'] == last_step
  for r in rows:
    assert all(np.isfinite(v) for v in r.values()), r
  assert (workdir / 'samples' / f'step_{last_step:06d}.png').exists()
  assert (workdir / 'checkpoints' / str(last_step)).is_dir()
  return rows


@pytest.mark.parametrize('loss', sorted(losses.LOSSES))
def test_toy_ring_smoke_every_objective(loss, tmp_path):
  config = toy_ring.get_config(f'loss={loss},smoke')
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == config.num_steps
  _check_run(tmp_path, config.num_steps)


def test_toy_grid_smoke_with_ema(tmp_path):
  config = toy_ring.get_config('dataset=grid,smoke')
  config.ema_decay = 0.99
  state = train.train_and_evaluate(config, str(tmp_path))
  assert state.g_ema is not None
  _check_run(tmp_path, config.num_steps)


@pytest.mark.parametrize('model', ['resnet', 'dcgan'])
def test_cifar10_sngan_smoke_on_mock_data(model, tmp_path, monkeypatch):
  # TFDS 4.9.10's mock source sets __getitems__ without `self`; see test_data.
  monkeypatch.setattr(
    mocking, '_getitems', lambda keys, generator: [generator[k] for k in keys]
  )
  config = cifar10_sngan.get_config(f'model={model},smoke')
  with tfds.testing.mock_data(
    num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    train.train_and_evaluate(config, str(tmp_path))
  _check_run(tmp_path, config.num_steps)


def test_augmentation_smoke_sweep_and_report(mnist_dirs, lenet_cache, tmp_path):
  """A conditional GAN per label fraction, its classifiers' accuracies in
  results.json, a sample grid with a row per class, the accuracy figure."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from gan_jax import report  # pylint: disable=g-import-not-at-top

  manual_dir, data_dir = mnist_dirs
  overrides = {
    'data.manual_dir': manual_dir,
    'data.data_dir': data_dir,
    'eval.cache_dir': lenet_cache,
    'eval.cas_steps': 10,  # the classifiers' plumbing, not their accuracy
  }
  spec = f'{augmentation_mnist.__file__}:smoke'
  out = tmp_path / 'augmentation'
  index = sweep.run(str(out), spec, overrides)
  assert [p['state'] for p in index['points']] == ['done', 'done']
  for point in index['points']:
    results = json.loads((out / point['name'] / 'results.json').read_text())
    for key in ('real_accuracy', 'augmented_accuracy', 'cas'):
      assert 0 <= results['metrics'][key] <= 1
    grid = out / point['name'] / 'samples' / 'step_000020.png'
    with Image.open(grid) as im:  # 16 samples: 10 rows of 1 (29 px each)
      assert im.size[1] == 10 * 29 + 1
  paths = report.main([str(out)])
  assert any(p.endswith('classifier_accuracy.png') for p in paths)
  table = (out / 'report' / 'report.md').read_text()
  assert '| data.train_fraction=0.01 |' in table


def test_metz2017_smoke_sweep_and_figure(tmp_path):
  """Unrolled (2 steps) and plain points train; the figure tiles them."""
  out = str(tmp_path / 'sweep')
  index = sweep.run(out, f'{metz2017_ring.__file__}:smoke', {})
  assert [p['state'] for p in index['points']] == ['done'] * 4
  assert all(p['results']['modes'] >= 0 for p in index['points'])
  figure = metz2017_ring.write_figure(str(tmp_path / 'fig1.png'), out)
  assert os.path.getsize(figure) > 0


def test_mnist_dcgan_recipes():
  """`tuned` is `radford` with RECIPE's fields; the studies that ran on the
  earlier model keep it; an unknown recipe is one clear error."""
  radford = mnist_dcgan.get_config('recipe=radford')
  assert (radford.model.g.width, radford.batch_size, radford.ema_decay) == (
    128,
    128,
    0.0,
  )
  tuned = mnist_dcgan.get_config()
  assert tuned.to_dict() == _apply(radford, mnist_dcgan.RECIPE).to_dict()
  assert mnist_dcgan.get_config('loss=hinge').loss == 'hinge'
  for module in (saturation, lucic2018_mnist, augmentation_mnist):
    assert module.get_config().ema_decay == 0.0  # radford's, not tuned's
  with pytest.raises(errors.ConfigError, match='valid: radford, tuned'):
    mnist_dcgan.get_config('recipe=best')


def test_mnist_recipe_seed_shares():
  """seed=S,seeds=N sweeps the levers at seeds S..S+N-1, lever-major."""
  points = mnist_recipe.get_hyper('seed=1,seeds=2')
  assert len(points) == 2 * len(mnist_recipe.LEVERS)
  assert [p['seed'] for p in points[:4]] == [1, 2, 1, 2]


def test_torch_reference_accepts_only_what_it_implements():
  """The PyTorch DCGAN takes the recipe study's config without EMA and
  names every field it does not implement."""
  config = mnist_recipe.get_config()
  config.ema_decay = 0.0
  mnist_dcgan_torch.check(config)
  config.loss, config.model.d.spectral_norm = 'hinge', True
  with pytest.raises(errors.Error) as e:
    mnist_dcgan_torch.check(config)
  assert 'loss=' in str(e.value) and 'model.d.spectral_norm=' in str(e.value)
  assert 'ema_decay' not in str(e.value)
  with pytest.raises(errors.Error, match='ema_decay=0.999'):
    mnist_dcgan_torch.check(mnist_recipe.get_config())


def test_torch_reference_matches_the_flax_dcgan(
  mnist_dirs, lenet_cache, tmp_path
):
  """Same parameter shapes as models.dcgan (per layer, up to layout), the
  Flax initialisers' scale, and a short run writing its evaluations."""
  torch = pytest.importorskip('torch')
  import jax  # pylint: disable=g-import-not-at-top

  from gan_jax import evaluate, models  # pylint: disable=g-import-not-at-top

  config = mnist_dcgan.get_config('smoke')
  config.ema_decay, config.ema_start = 0.0, 0
  config.data.manual_dir, config.data.data_dir = mnist_dirs
  config.eval.cache_dir = lenet_cache
  config.num_steps, config.eval.every = 4, 2
  g, d = mnist_dcgan_torch.build(
    torch, config.model.g.width, config.model.d.width, config.model.z_dim
  )
  flax_g, flax_d = models.build(config.model, (28, 28, 1))
  z = jax.numpy.zeros((2, config.model.z_dim))
  x = jax.numpy.zeros((2, 28, 28, 1))
  key = jax.random.PRNGKey(0)
  flax_sizes = {
    'g': [v.size for v in jax.tree.leaves(flax_g.init(key, z)['params'])],
    'd': [v.size for v in jax.tree.leaves(flax_d.init(key, x)['params'])],
  }
  for name, module in (('g', g), ('d', d)):
    torch_sizes = [p.numel() for p in module.parameters()]
    assert sorted(torch_sizes) == sorted(flax_sizes[name]), name
  first = g[0].weight.detach().numpy()  # (49 * 2w, z_dim), fan-in z_dim
  assert abs(first.std() * np.sqrt(config.model.z_dim) - 1.0) < 0.05
  evaluator = evaluate.Evaluator(config)
  path = tmp_path / 'seed_0.jsonl'
  evals = mnist_dcgan_torch.train_seed(torch, config, evaluator, 0, path)
  assert [e['step'] for e in evals] == [2, 4]
  assert mnist_dcgan_torch._finished(path, 4)  # pylint: disable=protected-access
  assert set(evals[-1]['metrics']) >= {'fd', 'is'}
  assert evals[-1]['real_data'] == evaluator.real_data()
