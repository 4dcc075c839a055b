"""Every `python -m gan_jax.*` command refuses a bad command line in one
line (`error: ...`) naming the mistake and the valid choices, closest first,
and writes nothing. launch.py: tests/test_config.py; a run whose registering
file moved: tests/test_readme.py; a missing run directory:
tests/test_evaluate.py."""

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# (command, arguments, what the one line says); {run}: a trained toy run,
# {tmp}: a folder holding none/ (absent), empty/, untrained/ (a run's
# config.json only) and sweep folders whose sweep.json names the saturation
# smoke sweep (sweep/), a file that is gone (moved/) or a bad argument (bad/).
CASES = [
  pytest.param(
    'evaluate',
    [],
    'missing required flag(s) --workdir',
    id='evaluate-missing_flag',
  ),
  pytest.param(
    'evaluate',
    ['--workdri={run}'],
    'unknown flag --workdri; valid: --workdir, ',
    id='evaluate-mistyped_flag',
  ),
  pytest.param(
    'evaluate',
    ['--workdir={run}', '--metrics=fid'],
    "unknown metric 'fid'; valid: fd, ",
    id='evaluate-unknown_metric',
  ),
  pytest.param(
    'sample',
    [],
    'missing required flag(s) --workdir, --out',
    id='sample-missing_flags',
  ),
  pytest.param(
    'sample',
    ['--workdir={tmp}/empty', '--out={tmp}/x.png'],
    '{tmp}/empty/config.json not found',
    id='sample-not_a_run',
  ),
  pytest.param(
    'sample',
    ['--workdir={run}', '--out={tmp}/x.jpg'],
    '--out={tmp}/x.jpg must end in .npy or .png',
    id='sample-bad_out',
  ),
  pytest.param(
    'jacobian',
    ['--workdir={run}', '--stepp=1'],
    'unknown flag --stepp; valid: --step, ',
    id='jacobian-mistyped_flag',
  ),
  pytest.param(
    'jacobian',
    ['--workdir={tmp}/untrained'],
    'no checkpoint in {tmp}/untrained/checkpoints',
    id='jacobian-untrained_run',
  ),
  pytest.param(
    'sweep',
    [],
    'usage: python -m gan_jax.sweep SWEEP_DIR POINT_INDEX',
    id='sweep-no_arguments',
  ),
  pytest.param(
    'sweep',
    ['{tmp}/empty', '0'],
    '{tmp}/empty holds no sweep.json',
    id='sweep-not_a_sweep',
  ),
  pytest.param(
    'sweep',
    ['{tmp}/sweep', '99'],
    '{tmp}/sweep has no point 99: its sweep.json lists points 0 to ',
    id='sweep-no_such_point',
  ),
  pytest.param(
    'sweep',
    ['{tmp}/moved', '0'],
    'config file experiments/gone.py not found',
    id='sweep-moved_config_file',
  ),
  pytest.param(
    'sweep',
    ['{tmp}/bad', '0'],
    "unknown config argument 'seeds'; valid: seed, ",
    id='sweep-unknown_config_argument',
  ),
  pytest.param('report', [], 'no DIR given', id='report-no_dir'),
  pytest.param(
    'report',
    ['{run}', '--outt={tmp}/out'],
    'unknown flag --outt; valid: --out, ',
    id='report-mistyped_flag',
  ),
  pytest.param(
    'report',
    ['{tmp}/empty'],
    '{tmp}/empty is neither a run directory',
    id='report-not_a_run',
  ),
  pytest.param(
    'report',
    ['{run}', '--trend=fdd', '--out={tmp}/out'],
    "--trend 'fdd' is no evaluation metric of these runs; valid: fd, ",
    id='report-unknown_trend_metric',
  ),
  pytest.param(
    'metrics.inception',
    [],
    'missing required flag --convert',
    id='inception-missing_flag',
  ),
  pytest.param(
    'metrics.inception',
    ['--covert', '{tmp}/a.pth', '{tmp}/b.npz'],
    'unknown argument(s) --covert',
    id='inception-mistyped_flag',
  ),
  pytest.param(
    'metrics.inception',
    ['--convert', '{tmp}/none/a.pth', '{tmp}/b.npz'],
    '{tmp}/none/a.pth not found',
    id='inception-missing_file',
  ),
]


@pytest.fixture(scope='module')
def sweep_index(tmp_path_factory):
  """sweep.json of the saturation smoke sweep, before any point ran."""
  from gan_jax import sweep  # pylint: disable=g-import-not-at-top

  spec = f'{REPO / "experiments" / "saturation.py"}:smoke'
  directory = str(tmp_path_factory.mktemp('sweep'))
  return sweep.Sweep(directory, spec, {}).write_index()


# Runs every case as `python -m gan_jax.<command> <args>` does, each in a
# process forked from this one once it has imported the third-party packages
# the commands share (their import-time output, if any, is its stderr):
# each case's exit code, stderr and the files of run and its folder before
# and after it.
_COMMANDS = textwrap.dedent("""
  import json, os, pathlib, runpy, sys
  import absl.app, flax, jax, matplotlib.figure, ml_collections, numpy
  import optax, orbax.checkpoint, scipy.stats
  def files(*folders):
    return sorted(str(p) for f in folders for p in pathlib.Path(f).rglob('*'))
  cases, out = json.loads(sys.argv[1]), []
  for case in cases:
    before = files(case['run'], case['tmp'])
    pid = os.fork()
    if pid == 0:
      break
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    with open(case['err']) as f:
      err = f.read()
    after = files(case['run'], case['tmp'])
    out.append({'code': code, 'stderr': err, 'before': before, 'after': after})
  else:
    print(json.dumps(out))
    sys.exit(0)
  # The forked child: stdout and stderr to files, then the command.
  os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
  os.dup2(os.open(case['err'], os.O_WRONLY | os.O_CREAT), 2)
  sys.argv = [case['module'], *case['args']]
  runpy.run_module(case['module'], run_name='__main__', alter_sys=True)
""")


@pytest.fixture(scope='module')
def outcomes(toy_run, sweep_index, tmp_path_factory):
  """{case id: (its tmp folder, what _COMMANDS saw)}, one folder per case."""
  run, base = toy_run[0], tmp_path_factory.mktemp('cli')
  cases, folders = [], {}
  for param in CASES:
    command, args, _ = param.values
    tmp = base / param.id
    for name in ('empty', 'untrained'):
      (tmp / name).mkdir(parents=True)
    shutil.copy(run / 'config.json', tmp / 'untrained')
    for name, spec in [
      ('sweep', sweep_index['config']),
      ('moved', 'experiments/gone.py:smoke'),
      ('bad', 'experiments/saturation.py:seeds=3'),
    ]:
      (tmp / name).mkdir()
      index = {**sweep_index, 'config': spec}
      (tmp / name / 'sweep.json').write_text(json.dumps(index))
    err = base / f'{param.id}.stderr'  # beside tmp: not among its files
    cases.append(
      {
        'module': f'gan_jax.{command}',
        'args': [a.format(run=run, tmp=tmp) for a in args],
        'run': str(run),
        'tmp': str(tmp),
        'err': str(err),
      }
    )
    folders[param.id] = tmp
  r = subprocess.run(
    [sys.executable, '-c', _COMMANDS, json.dumps(cases)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert r.returncode == 0 and r.stderr == '', r.stderr[-3000:]
  seen = json.loads(r.stdout)
  return {p.id: (folders[p.id], s) for p, s in zip(CASES, seen)}


@pytest.mark.parametrize('command, args, message', CASES)
def test_a_bad_command_line_fails_in_one_line_and_writes_nothing(
  command, args, message, outcomes, request
):
  del command, args  # run by `outcomes`
  tmp, r = outcomes[request.node.callspec.id]
  assert r['code'] != 0
  stderr = r['stderr']
  assert stderr.strip().splitlines() == [stderr.strip()], stderr
  assert stderr.startswith(f'error: {message.format(tmp=tmp)}')
  assert r['after'] == r['before']
