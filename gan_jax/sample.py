"""Draws samples from a run's generator into a file for use elsewhere.

  python -m gan_jax.sample --workdir=runs/dcgan --num=10000 --out=x.npy
  python -m gan_jax.sample --workdir=runs/dcgan --num=64 --out=grid.png
.npy: float32 (num, *shape), images NHWC in [-1, 1]; .png: an image grid (a
scatter plot over the modes for toy data). EMA weights when the run keeps
them; --step picks a checkpoint (default: newest); z from --seed, drawn
from the run's prior (config.model.z_prior).
A class-conditional run draws balanced labels i mod K, saved beside the
samples as <out>_labels.npy (int32 (num,)); its grid has one row per class
and the same z down each column.
"""

import io
import os
import sys

from absl import app, flags, logging
import jax
import numpy as np

from gan_jax import checkpoint, console, data, generator, rundir, sampling
from gan_jax import writers
from gan_jax.errors import Error

flags.DEFINE_string('workdir', None, 'Run directory.')
flags.DEFINE_integer('num', 64, 'Number of samples.', lower_bound=1)
flags.DEFINE_string('out', None, 'Output file: .npy or .png.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: newest).')
flags.DEFINE_integer('seed', 0, 'Seed of the noise z.')
flags.mark_flags_as_required(['workdir', 'out'])
FLAGS = flags.FLAGS


def _save_npy(path: str, array: np.ndarray) -> None:
  """`array` as a .npy file, written whole or not at all."""
  data = io.BytesIO()
  np.save(data, array)
  rundir.write_bytes(path, data.getvalue())


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  ext = os.path.splitext(FLAGS.out)[1]
  if ext not in ('.npy', '.png'):
    sys.exit(f'error: --out={FLAGS.out} must end in .npy or .png')
  try:
    config, gan, state = checkpoint.restore_run(FLAGS.workdir, FLAGS.step)
    dataset = data.DATASETS[config.data.name]
    source = dataset.load(config.data) if dataset.kind == 'points' else None
  except Error as e:
    sys.exit(f'error: {e}')
  k = config.model.num_classes
  key = jax.random.PRNGKey(FLAGS.seed)
  sampler = generator.Sampler(gan.g, config)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  if ext == '.npy':
    samples, labels = sampler.draw(state, FLAGS.num, key)
    _save_npy(FLAGS.out, samples.astype(np.float32))
    if k:
      _save_npy(FLAGS.out[:-4] + '_labels.npy', labels)
  else:
    z, y, cols = sampling.grid_inputs(
      key, FLAGS.num, config.model.z_dim, k, config.model.z_prior
    )
    samples = sampler(state, z, y)
    title = f'step {int(state.step)}'
    rundir.save_png(
      FLAGS.out, writers.picture(samples, dataset, source, cols, title)
    )
  print(
    f'wrote {len(samples)} samples of step {int(state.step)} to {FLAGS.out}'
  )


if __name__ == '__main__':
  app.run(main, flags_parser=console.parse_flags)
