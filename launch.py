"""Entry point: `python launch.py --config=experiments/<file>.py[:args] --workdir=DIR`.

Flags only; the work is `gan_jax.train.train_and_evaluate(config, workdir)`,
or with --sweep `gan_jax.sweep.run` over the file's `get_hyper(args)` points
(DIR is then the sweep directory; see gan_jax/sweep.py for the launchers).
For several hosts pass --coordinator_address/--num_processes/--process_id,
or --distributed to let `jax.distributed` detect them (SLURM, TPU, ...).
"""

import re
import sys

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from gan_jax import console, registry, sweep, train
from gan_jax.errors import Error, flag_error

config_flags.DEFINE_config_file(
  'config', None, 'Experiment config file.', lock_config=True
)
flags.DEFINE_string('workdir', None, 'Directory of the run.')
flags.DEFINE_bool(
  'allow_config_change',
  False,
  'Continue a workdir whose config.json differs from --config.',
)
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize().')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'Processes in a multi-host run.')
flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')
flags.DEFINE_bool('sweep', False, "Run every point of the file's get_hyper.")
flags.DEFINE_enum(
  'launcher',
  'local',
  ['local', 'vmap', 'slurm', 'submitit_local'],
  'How --sweep runs its points.',
)
flags.DEFINE_integer(
  'parallel', 1, 'local launcher: points run at once (one GPU each).'
)
flags.DEFINE_string('slurm_partition', None, 'slurm launcher: partition.')
flags.DEFINE_integer('slurm_time', 240, 'slurm launcher: minutes per job.')
flags.DEFINE_integer('slurm_gpus', 0, 'slurm launcher: GPUs per job.')
flags.DEFINE_integer('slurm_cpus', None, 'slurm launcher: CPUs per job.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, where a bad flag or --config (a missing file, an
  unknown argument or field) ends in one line instead of a traceback."""
  spec = next(
    (a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None
  )
  try:
    if spec:  # the file may import files beside it
      registry.importable(sweep.experiment_path(spec))
    rest = FLAGS(argv)
    FLAGS.config  # noqa: B018 (config_flags loads the file on first use)
  except AttributeError as e:  # an override of a field the config lacks
    sys.exit(f'error: {_unknown_field(str(e), argv)}')
  except (flags.Error, Error) as e:
    sys.exit(f'error: {flag_error(e, FLAGS)}')
  return rest


def _unknown_field(message: str, argv: list[str]) -> str:
  """ConfigDict's "'lrr' Did you mean "lr"" as the override that named it."""
  name = re.search(r"'(\w+)", message)
  name = name.group(1) if name else '?'
  flag = next(
    (
      a.split('=', 1)[0]
      for a in argv
      if a.startswith('--config.') and name in a.split('=', 1)[0].split('.')
    ),
    '--config.*',
  )
  hint = re.search(r'Did you mean "([^"]+)"', message)
  hint = f' (did you mean {hint.group(1)!r}?)' if hint else ''
  return f'{flag}: the config has no field {name!r}{hint}'


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:  # Orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  console.quiet_third_party()
  if FLAGS.distributed or FLAGS.coordinator_address:
    # Cross-process collectives on CPU hosts (no effect on GPU/TPU).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(
      FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
    )
  try:
    if FLAGS.sweep:
      index = sweep.run(
        FLAGS.workdir,
        FLAGS['config'].config_filename,
        config_flags.get_override_values(FLAGS['config']),
        launcher=FLAGS.launcher,
        parallel=FLAGS.parallel,
        slurm=sweep.Slurm(
          FLAGS.slurm_partition,
          FLAGS.slurm_time,
          FLAGS.slurm_gpus,
          FLAGS.slurm_cpus,
        ),
      )
      failed = [p['name'] for p in index['points'] if p['state'] == 'failed']
      if failed:
        sys.exit(
          f'error: {len(failed)} point(s) failed ({", ".join(failed)}); see '
          f'{FLAGS.workdir}/sweep.json, fix them, and rerun to resume.'
        )
      return
    train.train_and_evaluate(
      FLAGS.config,
      FLAGS.workdir,
      allow_config_change=FLAGS.allow_config_change,
    )
  except Error as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
