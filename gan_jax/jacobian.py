"""The leading eigenvalues of the game's Jacobian at a run's checkpoint.

  python -m gan_jax.jacobian --workdir=runs/ring [--step=N] [--k=6]

Restores the checkpoint (default: newest), draws one minibatch of the run's
own training distribution from --seed, and computes the k eigenvalues of
largest modulus and the k of largest real part of the Jacobian of the
run's vector field (gan_jax.dynamics: both players' parameters, the run's
objective, penalties and scheme) from Jacobian-vector products, with their
residuals. Prints them and writes <workdir>/jacobian/step_<N>.json and a
figure of them in the complex plane, step_<N>.png (Berard et al. 2020,
Fig. 4). --dense forms the n x n matrix instead (small models only).
"""

import io
import os
import sys
import time

from absl import app, flags, logging
import jax
import numpy as np

from gan_jax import checkpoint, console, data, dynamics, rundir, train_state
from gan_jax.errors import Error

flags.DEFINE_string('workdir', None, 'Run directory.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: newest).')
flags.DEFINE_integer('k', 6, 'Eigenvalues of each kind.')
flags.DEFINE_integer('seed', 0, 'Seed of the minibatch and the step key.')
flags.DEFINE_integer('batch_size', None, "Minibatch (default: the run's).")
flags.DEFINE_bool('dense', False, 'Form the Jacobian (small models only).')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS

DIR = 'jacobian'


def run_field(workdir: str, step, seed: int, batch_size=None):
  """(config, state, v, w0): a run's vector field (gan_jax.dynamics) at its
  checkpoint `step` (newest if None) on one minibatch drawn from `seed`."""
  config, _, state = checkpoint.restore_run(workdir, step)
  if batch_size:
    config.batch_size = batch_size
  dataset = data.DATASETS[config.data.name]
  gan = train_state.build(config, dataset.shape, axis_name=dynamics.AXIS)
  source = dataset.load(config.data)
  keys, k_step = data.draw_keys(jax.random.PRNGKey(seed))
  batch = data.draw_batch(config, source, keys)
  batch = {k: x[0] for k, x in batch.items()}
  v, w0 = dynamics.vector_field(gan, config, state, batch, k_step)
  return config, state, v, w0


def spectrum(v, w0, k: int, dense: bool) -> dict:
  """{'largest_modulus', 'largest_real'}: lists of {'re', 'im',
  'residual'} of the k eigenvalues of each kind."""
  if dense:
    vals = np.linalg.eigvals(dynamics.dense(v, w0))
    kinds = {'largest_modulus': -np.abs(vals), 'largest_real': -vals.real}
    return {
      name: [
        {'re': float(x.real), 'im': float(x.imag), 'residual': 0.0}
        for x in vals[np.argsort(key, kind='stable')[:k]]
      ]
      for name, key in kinds.items()
    }
  out = {}
  for name, which in (('largest_modulus', 'LM'), ('largest_real', 'LR')):
    vals, res = dynamics.eigenvalues(v, w0, k, which)
    out[name] = [
      {'re': float(x.real), 'im': float(x.imag), 'residual': float(r)}
      for x, r in zip(vals, res)
    ]
  return out


def _figure(path: str, result: dict, title: str) -> None:
  """The eigenvalues in the complex plane, one marker per kind."""
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 4))
  for (name, vals), marker in zip(result['eigenvalues'].items(), 'ox'):
    ax.scatter(
      [x['re'] for x in vals],
      [x['im'] for x in vals],
      marker=marker,
      label=name.replace('_', ' '),
      facecolors='none' if marker == 'o' else None,
    )
  ax.axvline(0, color='k', lw=0.5)
  ax.axhline(0, color='k', lw=0.5)
  ax.set_xlabel('real part')
  ax.set_ylabel('imaginary part')
  ax.set_title(title)
  ax.legend()
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format='png', dpi=100)
  plt.close(fig)
  rundir.write_bytes(path, png.getvalue())


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    config, state, v, w0 = run_field(
      FLAGS.workdir, FLAGS.step, FLAGS.seed, FLAGS.batch_size
    )
    n = int(w0.shape[0])
    if not FLAGS.dense and FLAGS.k >= n - 1:
      raise Error(f'--k={FLAGS.k} needs k < n - 1 = {n - 1}: use --dense.')
    start = time.perf_counter()
    eigen = spectrum(v, w0, FLAGS.k, FLAGS.dense)
  except Error as e:
    sys.exit(f'error: {e}')
  step = int(state.step)
  result = {
    'step': step,
    'parameters': n,
    'update_scheme': config.update_scheme,
    'method': 'dense' if FLAGS.dense else 'arnoldi',
    'seconds': round(time.perf_counter() - start, 2),
    'eigenvalues': eigen,
  }
  out = os.path.join(FLAGS.workdir, DIR)
  os.makedirs(out, exist_ok=True)
  stem = os.path.join(out, f'step_{step:06d}')
  rundir.write_json(stem + '.json', result)
  _figure(stem + '.png', result, f'Jacobian eigenvalues, step {step}')
  print(
    f'step {step}: {n} parameters, {result["method"]}, {result["seconds"]} s'
  )
  for name, vals in eigen.items():
    print(f'  {name.replace("_", " ")}:')
    for x in vals:
      print(f'    {x["re"]:+.6f} {x["im"]:+.6f}i  residual {x["residual"]:.1e}')
  print(f'wrote {stem}.json and .png')


if __name__ == '__main__':
  app.run(main, flags_parser=console.parse_flags)
