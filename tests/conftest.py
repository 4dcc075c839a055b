"""Test set-up: 4 forced CPU devices, and real MNIST prepared once per session.

MNIST comes from the offline copy in ../shared/data/mnist beside the repo (or
$GAN_JAX_MNIST_DIR): the four original .gz files and their SHA256SUMS.
"""

import os
import pathlib
import signal
import subprocess
import tempfile
import time

# Tests compile hundreds of small programs: cheaper XLA:CPU compiles (same
# results up to float rounding) keep the suite within minutes on 2 cores.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '')
  + ' --xla_backend_optimization_level=0'
  + ' --xla_llvm_disable_expensive_passes=true'
)

# One XLA compilation cache per test process, inherited by the processes it
# starts (launch.py, sweep workers), which compile the same programs again.
os.environ.setdefault(
  'JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='gan_jax_xla_')
)
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update('jax_num_cpu_devices', 4)

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST_DIR = pathlib.Path(
  os.environ.get('GAN_JAX_MNIST_DIR', REPO.parent / 'shared' / 'data' / 'mnist')
)


@pytest.fixture(scope='session')
def mnist_manual_dir():
  """The folder of the MNIST copy's four original files (nothing prepared)."""
  if not (MNIST_DIR / 'train-images-idx3-ubyte.gz').exists():
    pytest.skip(f'no MNIST copy at {MNIST_DIR} (set GAN_JAX_MNIST_DIR)')
  return str(MNIST_DIR)


@pytest.fixture(scope='session')
def mnist_dirs(mnist_manual_dir, tmp_path_factory):
  """(manual_dir, data_dir): the MNIST copy and a TFDS dir it is prepared in."""
  from gan_jax import data  # pylint: disable=g-import-not-at-top

  data_dir = tmp_path_factory.mktemp('tfds')
  data.prepare('mnist', str(data_dir), mnist_manual_dir)
  return mnist_manual_dir, str(data_dir)


@pytest.fixture(scope='session')
def lenet_cache(mnist_dirs, tmp_path_factory):
  """A cache dir holding the LeNet of the smoke recipe (300 steps, ~97.6%)."""
  import ml_collections  # pylint: disable=g-import-not-at-top

  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  from experiments import mnist_dcgan  # pylint: disable=g-import-not-at-top

  cache = tmp_path_factory.mktemp('cache')
  manual_dir, data_dir = mnist_dirs
  steps = mnist_dcgan.get_config('smoke').eval.classifier_steps
  classifier.load_or_train(
    data.DATASETS['mnist'],
    ml_collections.ConfigDict({'data_dir': data_dir, 'manual_dir': manual_dir}),
    classifier.Recipe(steps=steps),
    str(cache),
  )
  return str(cache)


@pytest.fixture(scope='session')
def toy_run(tmp_path_factory):
  """A finished toy smoke run with EMA: evals at steps 100 and 200."""
  from experiments import toy_ring  # pylint: disable=g-import-not-at-top
  from gan_jax import train  # pylint: disable=g-import-not-at-top

  workdir = tmp_path_factory.mktemp('toy')
  c = toy_ring.get_config('smoke')
  c.ema_decay = 0.9
  state = train.train_and_evaluate(c, str(workdir))
  return workdir, c, state


def _stop_with_sigterm(cmd, workdir, env=None, rows=2):
  """Starts `cmd` (a launch.py training into `workdir`) from the repository,
  sends SIGTERM once metrics.jsonl has `rows` lines, and returns (exit
  code, the step N its last stderr line says it stopped at, stderr)."""
  proc = subprocess.Popen(
    cmd,
    cwd=REPO,
    env=env or dict(os.environ, JAX_NUM_CPU_DEVICES='4'),
    stderr=subprocess.PIPE,
    stdout=subprocess.DEVNULL,
    text=True,
  )
  metrics = pathlib.Path(workdir) / 'metrics.jsonl'
  deadline = time.time() + 300
  while not (metrics.exists() and metrics.read_text().count('\n') >= rows):
    assert proc.poll() is None and time.time() < deadline
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  last = err.strip().splitlines()[-1]
  assert 'stopped by SIGTERM at step' in last, err[-2000:]
  return proc.returncode, int(last.split('at step ')[1].split(';')[0]), err


@pytest.fixture
def stop_with_sigterm():
  """_stop_with_sigterm, for tests that interrupt a launch.py run."""
  return _stop_with_sigterm
