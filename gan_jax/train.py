"""`train_and_evaluate(config, workdir)`: the whole training run, one flat loop.

`train_models(configs, workdirs)` trains several models that differ only in
their seed and optimizer hyper-parameters (VMAPPED_FIELDS) in one program:
their states are stacked along a leading model axis and the update is
`jax.vmap`ped over it; each model's metrics, samples, evaluations and
checkpoints go to its own workdir exactly as if it had run alone.
"""

import json
import math
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
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
# Fields in which models trained in one vmapped program may differ.
VMAPPED_FIELDS = ('seed',) + tuple(
  f'optim.{net}{k}' for net in ('', 'g_', 'd_') for k in ('lr', 'b1', 'b2')
)


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


def member_configs(config) -> list:
  """`config.num_models` = K > 1: K copies with seeds seed, ..., seed+K-1."""
  configs = []
  for i in range(config.num_models):
    c = config.copy_and_resolve_references()
    c.seed, c.num_models = config.seed + i, 1
    configs.append(c)
  return configs


def train_and_evaluate(
  config, workdir: str, *, allow_config_change: bool = False
) -> ts.TrainState:
  """Trains a GAN as `config` says, writing everything into `workdir`.

  Resumes from the newest usable checkpoint in `workdir/checkpoints`; a
  finished run is reported and left as it is. A workdir whose config.json
  differs from `config` (other than in RESUMABLE_CHANGES) is refused unless
  `allow_config_change`. SIGTERM/SIGINT save a checkpoint of the current
  step and raise Interrupted. Returns the final TrainState.
  With config.num_models = K > 1, trains member_configs(config) in one
  program into `workdir/model_<i>` and returns their stacked states.
  """
  if config.num_models > 1:
    configs = member_configs(config)
    workdirs = [
      os.path.join(workdir, f'model_{i}') for i in range(len(configs))
    ]
    return train_models(
      configs, workdirs, allow_config_change=allow_config_change
    )
  return train_models(
    [config], [workdir], allow_config_change=allow_config_change
  )


def check_workdir(config, workdir, allow_config_change) -> str:
  """Refuses a workdir holding another run; returns the config's JSON."""
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
  return config_text


def _check_vmappable(configs) -> None:
  """Models of one program may differ only in VMAPPED_FIELDS."""
  first = json.loads(configs[0].to_json_best_effort())
  for c in configs[1:]:
    other = [
      f
      for f in _config_changes(first, json.loads(c.to_json_best_effort()))
      if f not in VMAPPED_FIELDS
    ]
    if other:
      raise config_lib.ConfigError(
        f'models trained in one program may differ only in '
        f'{", ".join(VMAPPED_FIELDS)}; these differ too: {", ".join(other)}. '
        'Train them as separate runs.'
      )


class _Member:
  """One model's run directory: its config, checkpoints, writer and best."""

  def __init__(self, config, workdir, config_text, writes):
    self.config, self.workdir, self.writes = config, workdir, writes
    try:
      os.makedirs(workdir, exist_ok=True)
      path = os.path.join(workdir, 'config.json')
      if writes and not _has_text(path, config_text):
        with open(path, 'w') as f:
          f.write(config_text)
    except OSError as e:
      raise config_lib.ConfigError(
        f'cannot write to workdir {workdir} ({e.strerror}); pass a '
        'writable --workdir.'
      ) from e
    self.mngr = checkpoint.manager(
      os.path.join(workdir, 'checkpoints'),
      config.checkpoint_every,
      config.keep_checkpoints,
    )
    self.best_path = os.path.join(workdir, 'best.json')
    self.best = None  # {'metric', 'step', 'value'} of the best eval so far
    if os.path.exists(self.best_path):
      with open(self.best_path) as f:
        self.best = json.load(f)
    self.z_fixed, self.y_fixed, self.grid_cols = runs.grid_inputs(
      jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_SALT),
      config.num_samples,
      config.model.z_dim,
      config.model.num_classes,
    )
    self.writer = None

  def restore(self, state):
    """This member's newest usable checkpoint, or `state` when none."""
    restored = checkpoint.restore_latest(self.mngr, state)
    if restored is None:
      return state
    print(f'resumed from step {int(restored.step)} in {self.mngr.directory}')
    return restored

  def run_eval(self, evaluator, g, state, step, last):
    """Evaluates G; keeps the best checkpoint; results.json at the end."""
    config = self.config
    record = evaluate.evaluate_state(evaluator, g, state, config)
    self.writer.scalars(
      step,
      {f'eval/{k}': v for k, v in record['metrics'].items()}
      | {'eval/seconds': record['seconds']},
    )
    metric = config.eval.best_metric
    best = self.best
    if metric and evaluate.is_better(
      metric, record['metrics'][metric], best and best['value']
    ):
      best_mngr = checkpoint.manager(
        os.path.join(self.workdir, 'best_checkpoint'), 1, 1
      )
      checkpoint.save(best_mngr, step, state, force=True)
      best_mngr.wait_until_finished()
      best_mngr.close()
      self.best = {
        'metric': metric,
        'step': step,
        'value': record['metrics'][metric],
      }
      if self.writes:
        _write_json(self.best_path, self.best)
    if last and self.writes:
      _write_json(
        os.path.join(self.workdir, 'results.json'),
        record | {'best': self.best},
      )


def train_models(
  configs, workdirs, *, allow_config_change: bool = False
) -> ts.TrainState:
  """Trains models that differ only in VMAPPED_FIELDS, one per workdir.

  One model runs as is; K > 1 run as one vmapped program and the returned
  state has a leading model axis. See train_and_evaluate.
  """
  for c in configs:
    config_lib.validate(c)
  _check_vmappable(configs)
  config, k_models = configs[0], len(configs)
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

  # ---- Workdirs: refuse a different run's directory before any work.
  texts = [
    check_workdir(c, w, allow_config_change) for c, w in zip(configs, workdirs)
  ]
  # ---- Input: the whole dataset on every device (images as uint8).
  dataset = data.DATASETS[config.data.name]
  shape = dataset.shape
  source = jax.device_put(dataset.load(config.data), replicated)
  # Reference data and feature network (the LeNet is trained on first use).
  evaluator = None
  if evaluate.metric_names(config.eval):
    evaluator = evaluate.Evaluator(config)

  # ---- Write config.json (input errors above leave nothing behind).
  members = [
    _Member(c, w, t, writes) for c, w, t in zip(configs, workdirs, texts)
  ]

  # ---- Model and state: each member from its seed, resumed if it can be.
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  g_tx, d_tx = ts.make_optimizers(config.optim)
  init = jax.jit(
    lambda k: ts.init_state(
      g, d, g_tx, d_tx, config.model.z_dim, shape, k, config.ema_decay > 0
    ),
    out_shardings=replicated,
  )
  states = [m.restore(init(jax.random.PRNGKey(m.config.seed))) for m in members]
  steps = sorted({int(s.step) for s in states})
  if len(steps) > 1:  # a stop during a save: go back to the common step
    states = [
      checkpoint.restore_step(m.mngr, s, steps[0]) if s.step > steps[0] else s
      for m, s in zip(members, states)
    ]
  states = [
    jax.device_put(ts.set_hyperparameters(s, m.config.optim), replicated)
    for m, s in zip(members, states)
  ]
  first_step = steps[0]
  if first_step >= config.num_steps:
    for m in members:
      m.mngr.close()
    print(
      f'{", ".join(workdirs)} finished at step {first_step} (num_steps='
      f'{config.num_steps}); nothing to do. Raise --config.num_steps to '
      'train further.'
    )
    return states[0] if k_models == 1 else _stack(states)
  state = states[0] if k_models == 1 else _stack(states)
  member_state = (
    (lambda i: state)
    if k_models == 1
    else (lambda i: jax.tree.map(lambda x: x[i], state))
  )

  # ---- Update step and fixed-noise sampler.
  train_fn = ts.make_train_fn(
    mesh, config, g, d, g_tx, d_tx, num_models=k_models
  )
  sample = jax.jit(
    lambda s, z, y: g.apply(runs.generator_variables(s), z, y, train=False)
  )

  def write_samples(m, s, step):
    samples = np.asarray(sample(s, m.z_fixed, m.y_fixed))
    if dataset.kind == 'points':
      grid = writers.scatter_plot(samples, np.asarray(source), f'step {step}')
    else:
      grid = writers.image_grid(samples, m.grid_cols)
    if writes:
      writers.save_png(
        os.path.join(m.workdir, 'samples', f'step_{step:06d}.png'), grid
      )
    m.writer.image(step, 'samples', grid)

  # ---- Loop.
  for m in members:
    m.writer = writers.MetricWriter(m.workdir if writes else None)
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
      due_eval = evaluator and (
        last or (config.eval.every and step % config.eval.every == 0)
      )
      if due_log or due_ckpt:  # never checkpoint a state not checked finite
        host = jax.device_get(metrics)
        rows = [
          {
            k: float(np.reshape(v, (k_models, -1))[i, -1])
            for k, v in host.items()
          }
          for i in range(k_models)
        ]
        for m, row in zip(members, rows):
          bad = [k for k, v in row.items() if not math.isfinite(v)]
          if bad:
            raise TrainingDiverged(
              f'step {step}: {", ".join(bad)} became non-finite. The last '
              f'good checkpoint in {m.mngr.directory} is kept; lower '
              'config.optim.lr or choose another config.loss, then rerun.'
            )
      if due_log:
        t_now = time.perf_counter()
        rate = (step - s_last) / (t_now - t_last)
        t_last, s_last = t_now, step
        for m, row in zip(members, rows):
          row.update(
            steps_per_sec=rate, images_per_sec=rate * config.batch_size
          )
          m.writer.scalars(step, row)
        bar.set_postfix(
          d_loss=f'{rows[0]["d_loss"]:.3f}',
          g_loss=f'{rows[0]["g_loss"]:.3f}',
          refresh=False,
        )
      for i, m in enumerate(members):
        if step % config.sample_every == 0 or last:
          write_samples(m, member_state(i), step)
        if due_eval:
          m.run_eval(evaluator, g, member_state(i), step, last)
        if due_ckpt:
          checkpoint.save(m.mngr, step, member_state(i), force=True)
      if due_ckpt:
        saved = step
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
    bar.close()
    for m in members:
      if m.writer:
        m.writer.close()
      m.mngr.wait_until_finished()
      m.mngr.close()
  if stop and step < config.num_steps:
    where = members[0].mngr.directory if k_models == 1 else 'each model_<i>'
    raise Interrupted(
      f'stopped by {signal.Signals(stop[0]).name} at step {step}; its '
      f'checkpoint is in {where}. Rerun the same command to resume.'
    )
  return state


def _stack(states):
  """K states -> one with a leading model axis on every leaf."""
  return jax.tree.map(lambda *x: jnp.stack(x), *states)
