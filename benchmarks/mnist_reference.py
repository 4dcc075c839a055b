"""Reference numbers of the MNIST evaluation protocol, and its cost.

  python -m benchmarks.mnist_reference --manual_dir=../shared/data/mnist

Prints what each metric gives for true data (10k MNIST training images
scored against the test split, as if they were generated) and for a noise
baseline, the LeNet's test accuracy, and the wall time of one evaluation of
10k samples. Generated numbers are read against these.
"""

import time

from absl import app, flags, logging
import numpy as np

from experiments import mnist_dcgan
from gan_jax import data, evaluate

flags.DEFINE_string('manual_dir', None, 'Folder with the MNIST .gz files.')
flags.DEFINE_string('data_dir', None, 'TFDS data_dir.')
flags.DEFINE_string('cache_dir', '~/.cache/gan_jax', 'LeNet cache.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  c = mnist_dcgan.get_config()
  c.data.manual_dir, c.data.data_dir = FLAGS.manual_dir, FLAGS.data_dir
  c.eval.cache_dir = FLAGS.cache_dir
  c.eval.metrics = 'fd,kid,pr,dc,is,parzen'
  t0 = time.perf_counter()
  ev = evaluate.Evaluator(c)
  print(f'evaluator built in {time.perf_counter() - t0:.1f} s')
  print('feature net:', ev.protocol['feature_net'])
  rng = np.random.default_rng(0)
  train = data.DATASETS['mnist'].load(c.data)['images']
  sets = {
    'MNIST train[:10000]': train[:10_000].astype(np.float32) / 127.5 - 1,
    'uniform noise': rng.uniform(-1, 1, (10_000, 28, 28, 1)),
    'Gaussian noise (clipped)': np.clip(
      rng.normal(size=(10_000, 28, 28, 1)), -1, 1
    ),
  }
  keys = ['fd', 'kid', 'precision', 'recall', 'density', 'coverage', 'is']
  keys += ['parzen_ll', 'parzen_se', 'parzen_sigma']
  print('| samples | ' + ' | '.join(keys) + ' | seconds |')
  print('|' + ' --- |' * (len(keys) + 2))
  ev(sets['MNIST train[:10000]'].astype(np.float32))  # compile
  for name, samples in sets.items():
    samples = samples.astype(np.float32)
    t0 = time.perf_counter()
    r = ev(samples)
    seconds = time.perf_counter() - t0
    cells = ' | '.join(f'{r[k]:.4g}' for k in keys)
    print(f'| {name} | {cells} | {seconds:.1f} |', flush=True)
  c.eval.metrics = 'fd,kid,pr,dc,is'
  ev = evaluate.Evaluator(c)
  ev(sets['MNIST train[:10000]'].astype(np.float32))  # compile
  t0 = time.perf_counter()
  ev(sets['MNIST train[:10000]'].astype(np.float32))
  print(f'fd,kid,pr,dc,is on 10k samples: {time.perf_counter() - t0:.1f} s')


if __name__ == '__main__':
  app.run(main)
