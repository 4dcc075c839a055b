"""The command line of `python -m gan_jax.report` (absl flags)."""

import glob
import os
import sys

from absl import flags

from gan_jax import rundir
from gan_jax.errors import ReportError, closest_first, flag_error
from gan_jax.report import docs, figures, page, read, stats, tables

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
flags.DEFINE_string(
  'trend',
  None,
  'An evaluation metric (e.g. parzen_ll): also write trend_<metric>.md, a '
  'line per group through its mean against log2(step).',
  FLAGS,
)
flags.DEFINE_integer(
  'trend_from',
  1,
  'First evaluation step the trend line fits.',
  lower_bound=1,
  flag_values=FLAGS,
)
flags.DEFINE_float(
  'target',
  None,
  'With --trend: also the step where each line meets this value.',
  flag_values=FLAGS,
)
flags.DEFINE_bool(
  'docs',
  False,
  'Rewrite the generated tables of each FILE (default docs/results.md and '
  'the study pages docs/results/*.md) from '
  'the records they name (gan_jax.report.docs).',
  FLAGS,
)
flags.DEFINE_bool(
  'check',
  False,
  'With --docs: write nothing; exit 1 naming each table that differs from '
  'what its records give.',
  FLAGS,
)
flags.DEFINE_bool(
  'records',
  False,
  'Each DIR is a committed records folder (docs/results/<study>/): redraw '
  'its report page in place from the records alone.',
  FLAGS,
)
flags.DEFINE_bool('help', False, 'Show this help.', FLAGS, short_name='h')

USAGE = (
  'usage: python -m gan_jax.report DIR [DIR ...] [--out OUT] [--pool] '
  '[--trend METRIC [--trend_from STEP] [--target VALUE]]\n'
  '       python -m gan_jax.report --docs [--check] [FILE ...]\n'
  '       python -m gan_jax.report --records FOLDER [FOLDER ...]'
)
DOCS = 'docs/results.md'
STUDY_PAGES = 'docs/results/*.md'  # a study's own page, beside its records


def _parse(argv: list[str]) -> tuple[list[str], str]:
  """(DIRs, output folder) of the arguments; SystemExit on bad ones."""
  FLAGS.unparse_flags()  # main may run more than once in a process
  try:
    dirs = FLAGS(['gan_jax.report', *argv])[1:]
  except flags.Error as e:
    raise SystemExit(f'error: {flag_error(e, FLAGS)}') from None
  if FLAGS.help:
    print(f'{USAGE}\n\nDIR: run or sweep directory.\n')
    print(FLAGS.module_help(__name__).lstrip('\n'))
    raise SystemExit(0)
  if FLAGS.check and not FLAGS.docs:
    raise SystemExit('error: --check needs --docs')
  if FLAGS.docs:
    return dirs or [DOCS, *sorted(glob.glob(STUDY_PAGES))], ''
  if not dirs:
    raise SystemExit('error: no DIR given: pass run or sweep directories')
  if FLAGS.target is not None and FLAGS.trend is None:
    raise SystemExit('error: --target needs --trend METRIC')
  if FLAGS.records:
    if FLAGS.out or FLAGS.trend or FLAGS.pool:
      raise SystemExit('error: --records redraws each folder in place alone')
    return dirs, ''
  if FLAGS.out is None and len(dirs) > 1:
    raise SystemExit('error: several DIRs: pass --out')
  return dirs, FLAGS.out or os.path.join(dirs[0], 'report')


def _check_trend(groups: list[read.Group]) -> None:
  """SystemExit unless --trend names an evaluation metric of the runs."""
  valid = figures.eval_metrics(groups)
  if FLAGS.trend not in valid:
    valid = closest_first(FLAGS.trend, valid)
    raise SystemExit(
      f'error: --trend {FLAGS.trend!r} is no evaluation metric of these '
      f'runs; valid: {", ".join(valid) or "none (no evaluations logged)"}'
    )


def _write_trend(groups: list[read.Group], out: str) -> str:
  """Writes OUT/trend_<metric>.md (notes a group with under 2 evaluations
  from --trend_from on); returns its path."""
  trends = []
  for g in groups:
    t = stats.log_trend(g, FLAGS.trend, FLAGS.trend_from, FLAGS.target)
    if t is None:
      print(
        f'note: {g.label}: under 2 evaluations of {FLAGS.trend} from step '
        f'{FLAGS.trend_from} on, no trend line'
      )
    else:
      trends.append(t)
  path = os.path.join(out, f'trend_{figures.file_name(FLAGS.trend)}.md')
  tables.write_trend(trends, FLAGS.trend, FLAGS.target, path)
  return path


def _docs(files: list[str]) -> list[str]:
  """--docs: rewrites (or with --check compares) each file's tables."""
  stale, written = [], []
  for path in files:
    try:
      with open(path) as f:
        text = f.read()
      root = os.path.dirname(os.path.abspath(path))
      if FLAGS.check:
        stale += [f'{path}: {d}' for d in docs.check(text, root)]
        continue
      fresh = docs.render(text, root)
    except (OSError, ReportError) as e:
      raise SystemExit(f'error: {e}') from None
    if fresh != text:
      rundir.write_text(path, fresh)
      written.append(path)
  if stale:
    raise SystemExit(
      'error: tables differ from their records (rewrite them with '
      'python -m gan_jax.report --docs):\n' + '\n'.join(stale)
    )
  for p in written:
    print(p)
  return written


def main(argv: list[str] | None = None) -> list[str]:
  """Reads DIRs, writes the report; prints and returns the paths written.

  argv: the arguments without the program name (default: sys.argv[1:]).
  """
  dirs, out = _parse(sys.argv[1:] if argv is None else argv)
  if FLAGS.docs:
    return _docs(dirs)
  if FLAGS.records:
    paths = []
    for d in dirs:
      try:
        paths += page.write_records_report(d)
      except (OSError, ReportError) as e:
        raise SystemExit(f'error: {d}: {e}') from None
    for p in paths:
      print(p)
    return paths
  try:
    several = page.progress if len(dirs) > 1 else None
    groups, notes = read.read_groups(dirs, FLAGS.pool, several)
  except ReportError as e:
    raise SystemExit(f'error: {e}') from None
  if FLAGS.trend is not None:
    _check_trend(groups)
  runs = sum(len(g.runs) for g in groups)
  page.progress(f'{runs} run(s) in {len(groups)} group(s)')
  for note in notes:
    print(f'note: {note}')
  trend = []
  if FLAGS.trend is not None:
    os.makedirs(out, exist_ok=True)
    trend = [_write_trend(groups, out)]
  paths = page.write_report(
    groups, out, notes, read.read_references(dirs), dirs, trend
  )
  for p in trend + paths:
    print(p)
  return trend + paths
