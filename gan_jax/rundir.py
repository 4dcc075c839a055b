"""The run and sweep directories: every file name, the atomic writes, the readers.

A run directory (docs/run_directory.md) is the project's public interface;
this module is the only place its layout is spelled. No JAX: the report reads
through it.

  WORKDIR/config.json          the run's full config
  WORKDIR/registered.json      {kind: {name: file}}: the files outside the
                               package that registered what the config
                               names (gan_jax.registry), imported first by
                               every later process that rebuilds the run
  WORKDIR/metrics.jsonl        {'step', scalars...} per logged step
  WORKDIR/samples/step_XXXXXX.png
  WORKDIR/checkpoints/STEP/    Orbax (gan_jax.checkpoint)
  WORKDIR/corrupt_checkpoints/ unreadable checkpoints moved aside
  WORKDIR/best_checkpoint/STEP/, best.json
  WORKDIR/results.json         the final evaluation
  WORKDIR/evaluations.jsonl    re-evaluations (gan_jax.evaluate)
  WORKDIR/environment.jsonl    where each start ran: backend, devices,
                               versions, backend-resolved model fields
  WORKDIR/model_<i>/           the members of a num_models run
  WORKDIR/.lease               the lease of the process writing the run
                               (host, pid, since; gan_jax.lease)
  SWEEP/sweep.json             a sweep's index; SWEEP/<point>/ run directories
"""

import contextlib
import csv
import io
import json
import os
import re
import uuid

import numpy as np
from PIL import Image

from gan_jax import config as config_lib, registry
from gan_jax.errors import ConfigError

CONFIG = 'config.json'
REGISTERED = 'registered.json'
METRICS = 'metrics.jsonl'
SAMPLES = 'samples'
CHECKPOINTS = 'checkpoints'
CORRUPT_CHECKPOINTS = 'corrupt_checkpoints'
BEST_CHECKPOINT = 'best_checkpoint'
BEST = 'best.json'
RESULTS = 'results.json'
EVALUATIONS = 'evaluations.jsonl'
ENVIRONMENT = 'environment.jsonl'
SWEEP_INDEX = 'sweep.json'
LEASE = '.lease'  # the writer's lease on a run directory (gan_jax.lease)
# Config fields a run resumes with changed: more steps extend it.
RESUMABLE_CHANGES = ('num_steps',)
_SAMPLE = re.compile(r'step_(\d+)\.png$')
_MODEL = re.compile(r'model_(\d+)$')


# ---- Names.


def sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, SAMPLES, f'step_{step:06d}.png')


def sample_step(path: str) -> int:
  """The step of a sample_path."""
  return int(_SAMPLE.search(path).group(1))


def model_dir(workdir: str, i: int) -> str:
  """Member i's run directory in a num_models workdir."""
  return os.path.join(workdir, f'model_{i}')


def is_run(path: str) -> bool:
  return os.path.isfile(os.path.join(path, CONFIG))


def is_sweep(path: str) -> bool:
  return os.path.isfile(os.path.join(path, SWEEP_INDEX))


def model_dirs(path: str) -> list[str]:
  """The model_<i>/ run directories of a num_models run, by i."""
  if not os.path.isdir(path):
    return []
  found = [
    (int(m.group(1)), n) for n in os.listdir(path) if (m := _MODEL.fullmatch(n))
  ]
  return [
    os.path.join(path, n)
    for _, n in sorted(found)
    if is_run(os.path.join(path, n))
  ]


def latest_sample(workdir: str) -> str | None:
  """The samples/step_XXXXXX.png of the largest step, or None."""
  folder = os.path.join(workdir, SAMPLES)
  if not os.path.isdir(folder):
    return None
  found = [
    (int(m.group(1)), n) for n in os.listdir(folder) if (m := _SAMPLE.search(n))
  ]
  return os.path.join(folder, max(found)[1]) if found else None


# ---- Policy: which run a directory may hold, and how far it got.


def check_workdir(config, workdir: str, allow_config_change: bool) -> str:
  """Refuses a workdir holding a run of another config (one differing in
  more than RESUMABLE_CHANGES) unless `allow_config_change`; returns the
  config's JSON, what config.json will hold."""
  config_text = config.to_json_best_effort(indent=2, sort_keys=True)
  old = read_config(workdir)
  if old is not None and not allow_config_change:
    old = config_lib.to_dict(config_lib.from_saved(old))  # newer fields
    changes = config_lib.changes(old, config_lib.to_dict(config))
    changes = [c for c in changes if c not in RESUMABLE_CHANGES]
    if changes:
      raise ConfigError(
        f'{workdir} holds a run with another config ({", ".join(changes)} '
        'differ); use a new --workdir, or pass --allow_config_change to '
        'continue this run with the new config.'
      )
  return config_text


def progress(steps: list[int], num_steps: int) -> tuple[str, int]:
  """(pending|partial|done, newest step) of a run of `num_steps` whose
  committed checkpoints are at `steps`."""
  step = max(steps, default=0)
  if step >= num_steps:
    return 'done', step
  return ('partial' if step else 'pending'), step


# ---- Writes that survive a cut: a reader never sees half a file or a
# merged line (a kill, a full disk).


def write_bytes(path: str, data: bytes) -> None:
  """Writes `path` whole or not at all: `data` goes to a temporary of this
  call's own in the same folder (two writers never share one), synced to
  disk, then renamed over `path`. On failure the temporary is removed, the
  old file is left as it was, and the error propagates."""
  folder = os.path.dirname(path) or '.'
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(
    folder, f'.{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp'
  )
  # Not mkstemp: its files are 0600; these get the umask's mode, as open().
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  """`text` as UTF-8, whole or not at all (write_bytes)."""
  write_bytes(path, text.encode('utf-8'))


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2))


def write_csv(path: str, rows) -> None:
  """Rows (lists of cells, the header first) as CSV, whole or not at all."""
  text = io.StringIO()
  csv.writer(text).writerows(rows)
  write_text(path, text.getvalue())


def save_png(path: str, grid: np.ndarray) -> None:
  """Writes a uint8 (H, W, 1 or 3) array as PNG, whole or not at all."""
  png = io.BytesIO()
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(
    png, format='PNG'
  )
  write_bytes(path, png.getvalue())


def _end_last_line(f) -> None:
  """Ends the binary file `f` (opened to append) on a newline: bytes after
  its last newline are dropped, or ended with one where they are a whole
  JSON value (a row written by hand, say)."""
  end = pos = f.seek(0, os.SEEK_END)
  keep = 0
  while pos > 0:
    start = max(0, pos - 4096)
    f.seek(start)
    newline = f.read(pos - start).rfind(b'\n')
    if newline >= 0:
      keep = start + newline + 1
      break
    pos = start
  if keep == end:
    return
  f.seek(keep)
  try:
    json.loads(f.read())
  except ValueError:
    f.truncate(keep)
  else:
    f.write(b'\n')


def open_jsonl(path: str):
  """`path` opened to append rows (write_row), after dropping a cut last
  line: the bytes after the last newline, left by a writer killed mid-row,
  which would merge with the next row. A resumed run logs those rows again:
  it restarts from a checkpoint older than any row being written (the loop
  saves a step after logging it). Unbuffered: each row is one write."""
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  f = open(path, 'a+b', buffering=0)  # noqa: SIM115 (the caller closes it)
  try:
    _end_last_line(f)
  except BaseException:
    f.close()
    raise
  return f


def write_row(f, row: dict) -> None:
  """One JSON line in one write call (a file of open_jsonl): a kill leaves
  rows whole or the last one cut, never two interleaved."""
  data = (json.dumps(row) + '\n').encode('utf-8')
  while data:  # a regular file takes it all at once but for a full disk
    data = data[f.write(data) :]


def append_jsonl(path: str, row: dict) -> None:
  """Appends one row to a JSON-lines file, after dropping a cut last line."""
  with open_jsonl(path) as f:
    write_row(f, row)


# ---- Readers.


def read_json(path: str):
  """The JSON in `path`, or None when there is no such file."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def read_config(workdir: str) -> dict | None:
  """config.json as a plain dict, or None."""
  return read_json(os.path.join(workdir, CONFIG))


def write_config(workdir: str, config_text: str) -> None:
  """config.json, rewritten only when its text changes."""
  path = os.path.join(workdir, CONFIG)
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == config_text:
        return
  write_text(path, config_text)


def write_registered(workdir: str, record: dict) -> None:
  """registered.json (registry.origins' record), when the run names an
  entry registered outside the package."""
  path = os.path.join(workdir, REGISTERED)
  if record and read_json(path) != record:
    write_json(path, record)


def load_config(workdir: str):
  """The ConfigDict of the run in `workdir`, after importing the files that
  registered what it names (registered.json); ConfigError when it has no
  config or a registering file is missing."""
  saved = read_config(workdir)
  if saved is None:
    raise ConfigError(
      f'{os.path.join(workdir, CONFIG)} not found: pass the --workdir of a '
      'run made by launch.py.'
    )
  registry.import_files(read_json(os.path.join(workdir, REGISTERED)) or {})
  return config_lib.from_saved(saved)


def read_results(workdir: str) -> dict | None:
  return read_json(os.path.join(workdir, RESULTS))


def write_results(workdir: str, record: dict) -> None:
  write_json(os.path.join(workdir, RESULTS), record)


def read_best(workdir: str) -> dict | None:
  """best.json: {'metric', 'step', 'value'} of the best evaluation, or None."""
  return read_json(os.path.join(workdir, BEST))


def write_best(workdir: str, best: dict) -> None:
  write_json(os.path.join(workdir, BEST), best)


def append_evaluation(workdir: str, record: dict) -> None:
  append_jsonl(os.path.join(workdir, EVALUATIONS), record)


def append_environment(workdir: str, record: dict) -> None:
  append_jsonl(os.path.join(workdir, ENVIRONMENT), record)


def read_metrics(workdir: str) -> tuple[list[dict], list[dict], int]:
  """(train rows, eval rows, unreadable lines) of WORKDIR/metrics.jsonl.

  A row is an eval row when it has 'eval/...' keys, which lose that prefix.
  For each step and kind the last row wins (a resumed run appends); rows come
  back sorted by step.
  """
  path = os.path.join(workdir, METRICS)
  train, evals, bad = {}, {}, 0
  if not os.path.exists(path):
    return [], [], 0
  with open(path) as f:
    for line in f:
      if not line.strip():
        continue
      try:
        row = json.loads(line)
        step = int(row['step'])
      except (ValueError, KeyError, TypeError):
        bad += 1  # e.g. a line cut short when a run was killed
        continue
      if any(k.startswith('eval/') for k in row):
        evals[step] = {'step': step} | {
          k[len('eval/') :]: v for k, v in row.items() if k.startswith('eval/')
        }
      else:
        train[step] = row | {'step': step}
  return (
    [train[s] for s in sorted(train)],
    [evals[s] for s in sorted(evals)],
    bad,
  )


def read_sweep_index(directory: str) -> dict | None:
  return read_json(os.path.join(directory, SWEEP_INDEX))


def write_sweep_index(directory: str, index: dict) -> None:
  write_json(os.path.join(directory, SWEEP_INDEX), index)
