"""Config parsing and read-time validation: bad names fail at once, listing
the valid ones, before any data is read or any device work starts."""

import pathlib
import subprocess
import sys

import pytest

from gan_jax import losses
from gan_jax import errors, validate
from experiments import mnist_dcgan

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_parse_arg_types_and_flags():
  c = mnist_dcgan.get_config('loss=minimax,smoke')
  assert c.loss == 'minimax' and c.num_steps == 20
  assert mnist_dcgan.get_config(None).loss == 'non_saturating'
  with pytest.raises(errors.ConfigError, match='valid: loss, recipe, smoke'):
    mnist_dcgan.get_config('los=minimax')


@pytest.mark.parametrize(
  'field, kind',
  [
    ('loss', 'loss'),
    ('model.name', 'model'),
    ('data.name', 'dataset'),
    ('compute_dtype', 'compute_dtype'),
    ('matmul_precision', 'matmul_precision'),
  ],
)
def test_unknown_name_lists_valid_names(field, kind):
  c = mnist_dcgan.get_config('smoke')
  parent, _, leaf = field.rpartition('.')
  (c[parent] if parent else c)[leaf] = 'nope'
  with pytest.raises(errors.ConfigError) as e:
    validate.validate(c)
  assert f"unknown {kind} 'nope'; valid: " in str(e.value)
  if kind == 'loss':
    for name in losses.LOSSES:
      assert name in str(e.value)


def test_steps_must_divide_into_dispatches():
  c = mnist_dcgan.get_config('smoke')
  c.log_every = 7
  with pytest.raises(errors.ConfigError, match='multiple of'):
    validate.validate(c)


def test_launch_rejects_bad_loss_in_one_line(tmp_path):
  r = subprocess.run(
    [
      sys.executable,
      'launch.py',
      '--config=experiments/mnist_dcgan.py:loss=saturating,smoke',
      f'--workdir={tmp_path / "run"}',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode != 0
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("error: unknown loss 'saturating'; valid: ")
  assert 'minimax' in last and 'non_saturating' in last
  assert not (tmp_path / 'run').exists()  # nothing half-written


@pytest.mark.parametrize(
  'net, field, value, valid',
  [
    ('d', 'norm', 'group', 'valid: batch, layer, none'),
    ('g', 'conv', 'fft', 'valid: auto, gemm, xla'),
    ('d', 'widht', 8, 'widht'),
  ],
)
def test_bad_model_field_fails_at_read_time(net, field, value, valid):
  c = mnist_dcgan.get_config('smoke')
  c.model[net][field] = value
  with pytest.raises(errors.ConfigError, match='config.model') as e:
    validate.validate(c)
  assert valid in str(e.value)


def test_penalty_with_batch_norm_is_refused():
  c = mnist_dcgan.get_config('loss=wasserstein_gp,smoke')
  assert c.model.d.norm == 'layer'  # the paper's per-example critic
  c.model.d.norm = 'batch'
  with pytest.raises(errors.ConfigError, match='norm=layer'):
    validate.validate(c)


@pytest.mark.parametrize('sweep', [False, True])
@pytest.mark.parametrize(
  'args, message',
  [
    (
      ['--config=experiments/nope.py'],
      'error: config file experiments/nope.py not found.',
    ),
    (
      ['--config=experiments/saturation.py:seeds=3'],
      "error: unknown config argument 'seeds'; valid: seed, loss, smoke",
    ),
    (  # a value the sweep's points override: still checked
      ['--config=experiments/saturation.py:smoke,loss=minmax'],
      "error: unknown loss 'minmax'; valid: minimax, dragan, hinge,",
    ),
    (
      ['--config=experiments/saturation.py:smoke', '--launcher=vmapp'],
      "error: unknown --launcher value 'vmapp'; valid: vmap, local, slurm,",
    ),
    (
      ['--config=experiments/saturation.py:smoke', '--paralel=2'],
      'error: unknown flag --paralel; valid: --parallel, ',
    ),
    (
      ['--config=experiments/saturation.py:smoke', '--config.optim.lrr=1'],
      "error: --config.optim.lrr: the config has no field 'lrr' (did you "
      "mean 'lr'?)",
    ),
  ],
)
def test_a_bad_command_line_fails_in_one_line_and_writes_nothing(
  args, message, sweep, tmp_path
):
  _refused(args + (['--sweep'] if sweep else []), message, tmp_path / 'run')


def _refused(args, message, workdir):
  """launch.py with `args` exits 1 with one line starting with `message`
  and leaves `workdir` unmade."""
  r = subprocess.run(
    [sys.executable, 'launch.py', *args, f'--workdir={workdir}'],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 1
  assert r.stderr.strip().startswith(message), r.stderr
  assert len(r.stderr.strip().splitlines()) == 1
  assert not workdir.exists()


@pytest.mark.parametrize(
  'args, message',
  [
    (
      ['--config=experiments/saturation.py:smoke,loss=hinge'],
      "error: config argument 'loss=hinge' sets loss, which every point of "
      'the sweep sets again',
    ),
    (
      ['--config=experiments/saturation.py:smoke', '--config.seed=4'],
      'error: --config.seed is set again by every point of the sweep',
    ),
  ],
)
def test_a_sweep_refuses_what_its_points_override(args, message, tmp_path):
  _refused(args + ['--sweep'], message, tmp_path / 'sweep')
