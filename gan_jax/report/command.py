"""The command line of `python -m gan_jax.report` (absl flags)."""

import os
import sys

from absl import flags

from gan_jax.errors import ReportError
from gan_jax.report import figures, read

# Private: gan_jax.sample defines a global --out; both load in one process.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
  'out', None, 'Output folder (default: DIR/report for one DIR).', FLAGS
)
flags.DEFINE_bool(
  'pool',
  False,
  'Several sweep DIRs that hold shares of one study (the same groups, other '
  'seeds): one group of all runs per group name.',
  FLAGS,
)
flags.DEFINE_bool('help', False, 'Show this help.', FLAGS, short_name='h')

USAGE = 'usage: python -m gan_jax.report DIR [DIR ...] [--out OUT] [--pool]'


def _parse(argv: list[str]) -> tuple[list[str], str]:
  """(DIRs, output folder) of the arguments; SystemExit on bad ones."""
  FLAGS.unparse_flags()  # main may run more than once in a process
  try:
    dirs = FLAGS(['gan_jax.report', *argv])[1:]
  except flags.Error as e:
    raise SystemExit(f'error: {e}') from None
  if FLAGS.help:
    print(f'{USAGE}\n\nDIR: run or sweep directory.\n')
    print(FLAGS.module_help(__name__).lstrip('\n'))
    raise SystemExit(0)
  if not dirs:
    raise SystemExit(f'error: no DIR given ({USAGE})')
  if FLAGS.out is None and len(dirs) > 1:
    raise SystemExit('error: several DIRs: pass --out')
  return dirs, FLAGS.out or os.path.join(dirs[0], 'report')


def main(argv: list[str] | None = None) -> list[str]:
  """Reads DIRs, writes the report; prints and returns the paths written.

  argv: the arguments without the program name (default: sys.argv[1:]).
  """
  dirs, out = _parse(sys.argv[1:] if argv is None else argv)
  try:
    groups, notes = read.read_groups(dirs, FLAGS.pool)
  except ReportError as e:
    raise SystemExit(f'error: {e}') from None
  for note in notes:
    print(f'note: {note}')
  paths = figures.write_report(groups, out, notes, read.read_references(dirs))
  for p in paths:
    print(p)
  return paths
