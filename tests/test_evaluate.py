"""The evaluator on real MNIST and toy data, in training, and its commands."""

import json
import pathlib
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from gan_jax import data, evaluate, generator
from gan_jax import checkpoint, errors, metrics, sampling, train_state, validate
from gan_jax.metrics import classifier, inception, parzen, stats
from experiments import cifar10_sngan, mnist_dcgan, mode_collapse, toy_ring

REPO = pathlib.Path(__file__).resolve().parents[1]


def _mnist_config(mnist_dirs, lenet_cache, metrics, n=500):
  c = mnist_dcgan.get_config('smoke')
  c.data.manual_dir, c.data.data_dir = mnist_dirs
  c.eval.cache_dir = lenet_cache
  c.eval.metrics = metrics
  c.eval.num_samples = n
  c.eval.best_metric = ''
  return c


def test_lenet_features_separate_mnist_from_noise(mnist_dirs, lenet_cache):
  """FD(test half A, test half B) << FD(MNIST, noise), on the real LeNet."""
  manual_dir, data_dir = mnist_dirs
  dc = ml_collections.ConfigDict(
    {'data_dir': data_dir, 'manual_dir': manual_dir}
  )
  recipe = classifier.Recipe(steps=300)
  params, info = classifier.load_or_train(
    data.DATASETS['mnist'], dc, recipe, lenet_cache
  )
  assert info['name'] == recipe.tag('mnist')
  assert info['test_accuracy'] > 0.95  # the 300-step budget; 3000 gives 99.1%
  test, labels = data.DATASETS['mnist'].read(dc, 'test')
  x = test.astype(np.float32) / 127.5 - 1.0
  apply = classifier.apply_fn()
  feats = np.concatenate(
    [apply(params, x[i : i + 1000])[0] for i in range(0, 10_000, 1000)]
  )
  noise = np.clip(
    np.random.default_rng(0).normal(size=(5000, 28, 28, 1)), -1, 1
  )
  noise_feats = np.asarray(apply(params, noise.astype(np.float32))[0])
  fd = lambda a, b: stats.frechet_distance(
    *stats.gaussian_stats(a), *stats.gaussian_stats(b)
  )
  halves = fd(feats[:5000], feats[5000:])
  to_noise = fd(feats[:5000], noise_feats)
  assert halves * 100 < to_noise, (halves, to_noise)
  # Cached: a second call restores the same weights without training.
  again, info2 = classifier.load_or_train(
    data.DATASETS['mnist'], dc, recipe, lenet_cache
  )
  assert info2 == info
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_feature_network_training_says_so(mnist_dirs, tmp_path, capsys):
  """Training the LeNet prints a line first; restoring it prints none."""
  manual_dir, data_dir = mnist_dirs
  dc = ml_collections.ConfigDict(
    {'data_dir': data_dir, 'manual_dir': manual_dir}
  )
  recipe = classifier.Recipe(steps=20)
  mnist = data.DATASETS['mnist']
  classifier.load_or_train(mnist, dc, recipe, str(tmp_path))
  said = capsys.readouterr().out
  assert said.startswith(f'training the feature network {recipe.tag("mnist")}')
  assert '(20 steps; cached in' in said and 'done in' in said
  classifier.load_or_train(mnist, dc, recipe, str(tmp_path))
  assert capsys.readouterr().out == ''


def test_evaluator_on_real_digits_and_noise(
  mnist_dirs, lenet_cache, monkeypatch
):
  """Training digits score near the test set; noise scores far from it.
  They are the protocol's real-data scale, computed once and cached."""
  c = _mnist_config(mnist_dirs, lenet_cache, 'fd,kid,pr,dc,is,parzen')
  ev = evaluate.Evaluator(c)
  train_images = data.DATASETS['mnist'].load(c.data)['images'][:500]
  real = ev(train_images.astype(np.float32) / 127.5 - 1.0)
  noise = ev(
    np.random.default_rng(0).uniform(-1, 1, (500, 28, 28, 1)).astype(np.float32)
  )
  assert set(real) == {
    s
    for m in metrics.METRICS
    if m not in ('modes', 'cas', 'augment')  # toy; test_cas.py
    for s in metrics.METRICS[m].scalars
  }
  assert real['fd'] * 20 < noise['fd']
  assert real['kid'] < 3 * real['kid_std'] + 1e-3 and noise['kid'] > 0.1
  assert real['precision'] > 0.6 and noise['precision'] < 0.05
  assert real['is'] > 5 > 2 > noise['is']
  assert real['parzen_ll'] > noise['parzen_ll'] + 100
  assert real['parzen_sigma'] in parzen.sigma_grid(10)
  # parzen_ll.py's sigma choice: the first 1,000 validation images.
  assert ev.protocol['parzen'].startswith(
    'sigma from logspace(-1, 0, 10) on train[50000:51000] (1000)'
  )
  assert len(ev.shared['parzen']['valid']) == 1000
  assert 'test accuracy' in ev.protocol['feature_net']
  # real_data scores the first 500 training images: those above.
  assert ev.real_data() == real
  monkeypatch.setattr(  # a new Evaluator reads the cache
    evaluate.Evaluator, '__call__', lambda *a: pytest.fail()
  )
  assert evaluate.Evaluator(c).real_data() == real


def test_finer_parzen_grid_contains_the_released_one(mnist_dirs, lenet_cache):
  """parzen_grid=19 halves the released grid's log-steps: its widths hold
  all 10 of logspace(-1, 0, 10), so its validation optimum is at least as
  likely; it is recorded in the protocol (so in the real-data cache's key).
  A grid of one width is refused."""
  np.testing.assert_allclose(
    parzen.sigma_grid(19)[::2], parzen.sigma_grid(10), rtol=1e-12
  )
  c = _mnist_config(mnist_dirs, lenet_cache, 'parzen')
  fine = c.copy_and_resolve_references()
  fine.eval.parzen_grid = 19
  ev, ev_fine = evaluate.Evaluator(c), evaluate.Evaluator(fine)
  assert ev_fine.protocol['parzen'].startswith('sigma from logspace(-1, 0, 19)')
  images = data.DATASETS['mnist'].load(c.data)['images'][:500]
  points = images.reshape(500, -1).astype(np.float32) / 255.0
  best = {}
  for e in (ev, ev_fine):
    sigma, means = parzen.select_sigma(
      points, e.shared['parzen']['valid'], e.shared['parzen']['sigmas']
    )
    assert e(images.astype(np.float32) / 127.5 - 1.0)['parzen_sigma'] == sigma
    best[len(e.shared['parzen']['sigmas'])] = means.max()
  assert best[19] >= best[10]
  fine.eval.parzen_grid = 1
  with pytest.raises(errors.ConfigError, match='parzen_grid must be >= 2'):
    validate.check_eval(fine)


def test_mode_coverage_of_true_and_collapsed_samples():
  c = toy_ring.get_config('smoke')
  c.eval.num_samples = 1000
  ev = evaluate.Evaluator(c)
  ring = data.DATASETS['ring']
  assert ev.protocol['modes'] == (
    f'high quality: within 3 std ({ring.std}) of the nearest mode'
  )
  centres = np.asarray(ring.centres, np.float32)
  true = np.asarray(ring.draw(centres, jax.random.PRNGKey(5), 1000)[0])
  good = ev(true)
  assert good['modes'] == 8 and good['high_quality'] > 98
  assert good['reverse_kl'] < 0.02 and good['fd'] < 1e-2
  one_mode = centres[0] + ring.std * np.random.default_rng(0).normal(
    size=(1000, 2)
  )
  collapsed = ev(one_mode.astype(np.float32))
  assert collapsed['modes'] == 1 and collapsed['reverse_kl'] == pytest.approx(
    np.log(8)
  )
  assert collapsed['recall'] < 0.2 < good['recall']


def test_real_data_scale_of_a_toy_mixture():
  """Fresh draws of the ring score like the data: 8 modes, high quality."""
  c = toy_ring.get_config('smoke')
  c.eval.num_samples = 1000
  real = evaluate.Evaluator(c).real_data()
  assert real['modes'] == 8 and real['high_quality'] > 98
  assert real['fd'] < 1e-2 and real['recall'] > 0.5


def test_damaged_real_data_cache_is_computed_again(
  mnist_dirs, lenet_cache, tmp_path
):
  """A cache file that is not JSON is recomputed; another protocol (sample
  count) gets its own file."""
  c = _mnist_config(mnist_dirs, lenet_cache, 'fd', n=200)
  c.eval.cache_dir = str(tmp_path)
  (tmp_path / 'real_data').mkdir()
  cache = pathlib.Path(lenet_cache)
  for entry in cache.iterdir():  # the trained LeNet, not its real_data
    if entry.name != evaluate.REAL_DATA:
      (tmp_path / entry.name).symlink_to(entry)
  real = evaluate.Evaluator(c).real_data()
  (path,) = (tmp_path / evaluate.REAL_DATA).glob('*.json')
  path.write_text('{"metr')
  assert evaluate.Evaluator(c).real_data() == real
  c.eval.num_samples = 100
  evaluate.Evaluator(c).real_data()
  assert len(list((tmp_path / evaluate.REAL_DATA).glob('*.json'))) == 2


@pytest.mark.parametrize(
  'field, value, message',
  [
    ('metrics', 'fd,fid', "unknown metric 'fid'"),
    ('metrics', 'fd,modes', "metric 'modes' counts mixture modes"),
    ('best_metric', 'parzen_ll', 'is not computed'),
    ('feature_net', 'raw', "metric 'is' needs a classifier"),
    ('every', 7, 'multiple of config.steps_per_dispatch'),
  ],
)
def test_bad_eval_config_is_refused(field, value, message):
  c = mnist_dcgan.get_config('smoke')
  c.eval[field] = value
  with pytest.raises(errors.ConfigError, match=message):
    validate.validate(c)


def test_lenet_on_cifar_and_missing_inception_weights_are_refused(tmp_path):
  c = cifar10_sngan.get_config('smoke')
  c.eval.feature_net = 'lenet'
  with pytest.raises(errors.ConfigError, match='28x28x1'):
    validate.validate(c)
  c.eval.feature_net = 'inception'
  c.eval.inception_path = str(tmp_path / 'absent.npz')
  with pytest.raises(errors.InceptionWeightsError) as e:
    validate.validate(c)
  assert inception.WEIGHTS_URL in str(e.value)
  assert isinstance(
    e.value, errors.DataError
  )  # launch.py reports it in one line


def test_training_writes_evals_results_and_best_checkpoint(toy_run):
  workdir, c, state = toy_run
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]
  evals = {r['step']: r for r in rows if 'eval/modes' in r}
  assert sorted(evals) == [100, 200]
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == 200
  assert results['protocol']['generator'] == 'EMA weights'
  assert results['protocol']['num_samples'] == 200
  for k, v in results['metrics'].items():
    assert evals[200][f'eval/{k}'] == v
  best_step = min(evals, key=lambda s: (evals[s]['eval/reverse_kl'], s))
  assert results['best'] == {
    'metric': 'reverse_kl',
    'step': best_step,
    'value': evals[best_step]['eval/reverse_kl'],
  }
  assert [p.name for p in (workdir / 'best_checkpoint').iterdir()] == [
    str(best_step)
  ]
  # Re-evaluating the latest checkpoint gives the numbers training logged.
  config, gan, restored = checkpoint.restore_run(str(workdir))
  record = evaluate.evaluate_state(
    evaluate.Evaluator(config),
    generator.Sampler(gan.g, config),
    restored,
    config,
  )
  assert record['metrics'] == results['metrics']


def test_standing_stats_score_the_trained_weights_with_their_batch_stats():
  """standing_stats: the trained weights are sampled with the batch
  statistics of their own activations (not the running ones), and the
  record says so."""
  c = mode_collapse.get_config('smoke')
  c.eval.metrics, c.eval.num_samples = 'fd', 200
  shape = data.DATASETS[c.data.name].shape
  gan = train_state.build(c, shape)
  state = train_state.init_state(
    gan, c.model.z_dim, shape, jax.random.PRNGKey(0)
  )
  evaluator = evaluate.Evaluator(c)
  assert c.standing_stats  # PacGAN's released protocol
  standing = evaluate.evaluate_state(
    evaluator, generator.Sampler(gan.g, c), state, c
  )
  c.standing_stats = False
  running = evaluate.evaluate_state(
    evaluator, generator.Sampler(gan.g, c), state, c
  )
  assert standing['protocol']['generator'] == (
    'trained weights with standing BatchNorm statistics'
  )
  assert running['protocol']['generator'] == 'trained weights'
  assert standing['metrics']['fd'] != running['metrics']['fd']


def _cli(*args):
  return subprocess.run(
    [sys.executable, *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )


def test_evaluate_and_sample_commands(toy_run, tmp_path):
  workdir, c, state = toy_run
  out = _cli(
    '-m',
    'gan_jax.evaluate',
    f'--workdir={workdir}',
    '--step=100',
    '--metrics=modes,fd',
    '--num_samples=300',
  )
  assert out.returncode == 0, out.stderr
  record = json.loads(
    (workdir / 'evaluations.jsonl').read_text().splitlines()[-1]
  )
  assert record['step'] == 100 and record['protocol']['num_samples'] == 300
  assert set(record['metrics']) == {'modes', 'high_quality', 'reverse_kl', 'fd'}
  assert record['protocol']['generator'] == 'EMA weights'
  out = _cli(
    '-m',
    'gan_jax.evaluate',
    f'--workdir={workdir}',
    '--metrics=fd',
    '--num_samples=300',
    '--trained_weights',
  )
  assert out.returncode == 0, out.stderr
  trained = json.loads(
    (workdir / 'evaluations.jsonl').read_text().splitlines()[-1]
  )
  assert trained['protocol']['generator'] == 'trained weights'
  config, gan, restored = checkpoint.restore_run(str(workdir))
  config.eval.metrics, config.eval.num_samples = 'fd', 300
  expected = evaluate.evaluate_state(
    evaluate.Evaluator(config),
    generator.Sampler(gan.g, config),
    restored.replace(g_ema=None),
    config,
  )
  assert trained['metrics'] == expected['metrics']

  out = _cli(
    '-m',
    'gan_jax.sample',
    f'--workdir={workdir}',
    '--num=50',
    f'--out={tmp_path / "s.npy"}',
  )
  assert out.returncode == 0, out.stderr
  samples = np.load(tmp_path / 's.npy')
  assert samples.shape == (50, 2) and samples.dtype == np.float32
  g = checkpoint.restore_run(str(workdir))[1].g
  z = sampling.noise(jax.random.PRNGKey(0), (50, c.model.z_dim))
  variables = train_state.generator_variables(g, state, c.model.z_dim)
  expected = g.apply(variables, z, None, train=False)
  np.testing.assert_allclose(samples, expected, rtol=1e-5, atol=1e-6)
  out = _cli(
    '-m',
    'gan_jax.sample',
    f'--workdir={workdir}',
    '--num=20',
    f'--out={tmp_path / "s.png"}',
  )
  assert out.returncode == 0 and (tmp_path / 's.png').stat().st_size > 0

  for args, message in [
    ((f'--workdir={tmp_path / "none"}',), 'config.json not found'),
    ((f'--workdir={workdir}', '--step=150'), 'there are steps [100, 200]'),
  ]:
    out = _cli('-m', 'gan_jax.evaluate', *args)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith('error: ') and message in out.stderr


def test_evaluation_runs_at_the_configs_matmul_precision(monkeypatch):
  """evaluate_state samples and scores under config.matmul_precision."""
  seen = []
  monkeypatch.setattr(
    evaluate,
    '_evaluate_state',
    lambda *a: seen.append(jax.config.jax_default_matmul_precision),
  )
  config = mnist_dcgan.get_config('smoke')
  for precision in ('float32', 'default'):
    config.matmul_precision = precision
    evaluate.evaluate_state(None, None, None, config)
  assert seen == ['float32', 'default']
