"""`train_and_evaluate(config, workdir)`: the whole training run, one flat loop."""

import json
import math
import os
import signal
import threading
import time

import jax
import numpy as np
import tqdm
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax import checkpoint, config as config_lib, data, evaluate, models
from gan_jax import runs, train_step as ts, writers

SAMPLE_SALT = 1234567  # fixed-noise grid: fold_in(PRNGKey(seed), SAMPLE_SALT)


class TrainingDiverged(RuntimeError):
  """A loss or gradient norm became NaN or infinite."""


class Interrupted(RuntimeError):
  """SIGTERM/SIGINT: a checkpoint of the current step was saved first."""


# Fields a rerun in the same workdir may change: extending a run is resuming.
RESUMABLE_CHANGES = ('num_steps',)


def _config_changes(old: dict, new: dict, prefix='') -> list[str]:
  """Dotted names of the fields that differ between two config dicts."""
  changes = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      changes += _config_changes(a, b, f'{prefix}{key}.')
    elif a != b:
      changes.append(prefix + key)
  return changes


def _has_text(path: str, text: str) -> bool:
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return f.read() == text


def _write_json(path: str, obj) -> None:
  """Writes `obj` as JSON atomically (a reader never sees half a file)."""
  with open(path + '.tmp', 'w') as f:
    json.dump(obj, f, indent=2)
  os.replace(path + '.tmp', path)


def train_and_evaluate(
  config, workdir: str, *, allow_config_change: bool = False
) -> ts.TrainState:
  """Trains a GAN as `config` says, writing everything into `workdir`.

  Resumes from the newest usable checkpoint in `workdir/checkpoints`; a
  finished run is reported and left as it is. A workdir whose config.json
  differs from `config` (other than in RESUMABLE_CHANGES) is refused unless
  `allow_config_change`. SIGTERM/SIGINT save a checkpoint of the current
  step and raise Interrupted. Returns the final TrainState.
  """
  config_lib.validate(config)
  # ---- Mesh: one `data` axis over every device of every process.
  n_dev = jax.device_count()
  if config.batch_size % n_dev:
    raise config_lib.ConfigError(
      f'config.batch_size={config.batch_size} is not divisible by the '
      f'{n_dev} devices; use a multiple of {n_dev}.'
    )
  mesh = jax.make_mesh(
    (n_dev,), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  replicated = NamedSharding(mesh, P())
  writes = jax.process_index() == 0

  # ---- Workdir: refuse a different run's directory before any work.
  config_path = os.path.join(workdir, 'config.json')
  config_text = config.to_json_best_effort(indent=2, sort_keys=True)
  if os.path.exists(config_path) and not allow_config_change:
    with open(config_path) as f:
      old = json.load(f)
    changes = [
      c
      for c in _config_changes(old, json.loads(config_text))
      if c not in RESUMABLE_CHANGES
    ]
    if changes:
      raise config_lib.ConfigError(
        f'{workdir} holds a run with another config ({", ".join(changes)} '
        'differ); use a new --workdir, or pass --allow_config_change to '
        'continue this run with the new config.'
      )
  # ---- Input: the whole dataset on every device (images as uint8).
  dataset = data.DATASETS[config.data.name]
  shape = dataset.shape
  source = jax.device_put(dataset.load(config.data), replicated)
  # Reference data and feature network (the LeNet is trained on first use).
  evaluator = None
  if evaluate.metric_names(config.eval):
    evaluator = evaluate.Evaluator(config)

  # ---- Write config.json (input errors above leave nothing behind).
  try:
    os.makedirs(workdir, exist_ok=True)
    if writes and not _has_text(config_path, config_text):
      with open(config_path, 'w') as f:
        f.write(config_text)
  except OSError as e:
    raise config_lib.ConfigError(
      f'cannot write to workdir {workdir} ({e.strerror}); pass a '
      'writable --workdir.'
    ) from e

  # ---- Model and state.
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  g_tx, d_tx = ts.make_optimizers(config.optim)
  init = jax.jit(
    lambda k: ts.init_state(
      g, d, g_tx, d_tx, config.model.z_dim, shape, k, config.ema_decay > 0
    ),
    out_shardings=replicated,
  )
  state = init(jax.random.PRNGKey(config.seed))

  # ---- Checkpoint: resume from the newest usable one.
  mngr = checkpoint.manager(
    os.path.join(workdir, 'checkpoints'),
    config.checkpoint_every,
    config.keep_checkpoints,
  )
  restored = checkpoint.restore_latest(mngr, state)
  if restored is not None:
    state = restored
    print(f'resumed from step {int(state.step)} in {mngr.directory}')
  first_step = int(state.step)
  if first_step >= config.num_steps:
    mngr.close()
    print(
      f'{workdir} finished at step {first_step} (num_steps='
      f'{config.num_steps}); nothing to do. Raise --config.num_steps to '
      'train further.'
    )
    return state

  # ---- Update step and fixed-noise sampler.
  train_fn = ts.make_train_fn(mesh, config, g, d, g_tx, d_tx)
  z_fixed = jax.random.normal(
    jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_SALT),
    (config.num_samples, config.model.z_dim),
  )
  sample = jax.jit(
    lambda s: g.apply(runs.generator_variables(s), z_fixed, train=False)
  )

  def write_samples(step):
    samples = np.asarray(sample(state))
    if dataset.kind == 'points':
      grid = writers.scatter_plot(samples, np.asarray(source), f'step {step}')
    else:
      grid = writers.image_grid(samples)
    if writes:
      writers.save_png(
        os.path.join(workdir, 'samples', f'step_{step:06d}.png'), grid
      )
    writer.image(step, 'samples', grid)

  best_path = os.path.join(workdir, 'best.json')
  best = None  # {'metric', 'step', 'value'} of the best evaluation so far
  if os.path.exists(best_path):
    with open(best_path) as f:
      best = json.load(f)

  def run_eval(step, last):
    """Evaluates G; keeps the best checkpoint; writes results.json at the end."""
    nonlocal best
    record = evaluate.evaluate_state(evaluator, g, state, config)
    writer.scalars(
      step,
      {f'eval/{k}': v for k, v in record['metrics'].items()}
      | {'eval/seconds': record['seconds']},
    )
    metric = config.eval.best_metric
    if metric and evaluate.is_better(
      metric, record['metrics'][metric], best and best['value']
    ):
      best_mngr = checkpoint.manager(
        os.path.join(workdir, 'best_checkpoint'), 1, 1
      )
      checkpoint.save(best_mngr, step, state, force=True)
      best_mngr.wait_until_finished()
      best_mngr.close()
      best = {
        'metric': metric,
        'step': step,
        'value': record['metrics'][metric],
      }
      if writes:
        _write_json(best_path, best)
    if last and writes:
      _write_json(
        os.path.join(workdir, 'results.json'), record | {'best': best}
      )

  # ---- Loop.
  writer = writers.MetricWriter(workdir if writes else None)
  bar = tqdm.tqdm(
    total=config.num_steps,
    initial=first_step,
    unit='step',
    disable=None if writes else True,
    dynamic_ncols=True,
  )
  step, t_last, s_last = first_step, time.perf_counter(), first_step
  stop = []  # signals received: save the current step (one more dispatch if
  saved = first_step  # it is not saved yet), then leave the loop
  handlers = {}
  if threading.current_thread() is threading.main_thread():
    for signum in (signal.SIGTERM, signal.SIGINT):
      handlers[signum] = signal.signal(signum, lambda n, _: stop.append(n))
  try:
    while step < config.num_steps and not (stop and saved == step):
      state, metrics = train_fn(state, source)
      step += config.steps_per_dispatch
      bar.update(config.steps_per_dispatch)
      if step == first_step + config.steps_per_dispatch:  # exclude compiling
        jax.block_until_ready(state)
        t_last, s_last = time.perf_counter(), step
      last = step == config.num_steps
      due_log = step % config.log_every == 0 or last
      due_ckpt = step % config.checkpoint_every == 0 or last or bool(stop)
      if due_log or due_ckpt:  # never checkpoint a state not checked finite
        metrics = {k: float(v[-1]) for k, v in jax.device_get(metrics).items()}
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
          raise TrainingDiverged(
            f'step {step}: {", ".join(bad)} became non-finite. The last '
            f'good checkpoint in {mngr.directory} is kept; lower '
            'config.optim.lr or choose another config.loss, then rerun.'
          )
      if due_log:
        t_now = time.perf_counter()
        rate = (step - s_last) / (t_now - t_last)
        metrics.update(
          steps_per_sec=rate, images_per_sec=rate * config.batch_size
        )
        t_last, s_last = t_now, step
        writer.scalars(step, metrics)
        bar.set_postfix(
          d_loss=f'{metrics["d_loss"]:.3f}',
          g_loss=f'{metrics["g_loss"]:.3f}',
          refresh=False,
        )
      if step % config.sample_every == 0 or last:
        write_samples(step)
      if evaluator and (
        last or (config.eval.every and step % config.eval.every == 0)
      ):
        run_eval(step, last)
      if due_ckpt:
        checkpoint.save(mngr, step, state, force=True)
        saved = step
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
    bar.close()
    writer.close()
    mngr.wait_until_finished()
    mngr.close()
  if stop and step < config.num_steps:
    raise Interrupted(
      f'stopped by {signal.Signals(stop[0]).name} at step {step}; its '
      f'checkpoint is in {mngr.directory}. Rerun the same command to resume.'
    )
  return state
