"""`train_and_evaluate(config, workdir)`: the whole training run.

`setup` builds what the loop needs (mesh, data, evaluator, members, restored
state, compiled functions); `loop` runs the updates and, at their steps, the
members' hooks (metrics, samples, evaluations, checkpoints).
`train_models(configs, workdirs)` trains several models that differ only in
their seed and optimizer hyper-parameters (VMAPPED_FIELDS) in one program:
their states are stacked along a leading model axis and the update is
`jax.vmap`ped over it; each model's metrics, samples, evaluations and
checkpoints go to its own workdir exactly as if it had run alone.
"""

import contextlib
import dataclasses
import errno
import math
import os
import signal
import threading
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax import checkpoint, config as config_lib, console, data, evaluate
from gan_jax import generator, lease, metrics, models, registry, rundir
from gan_jax import overfitting, sampling
from gan_jax import train_state, train_step as ts, validate, writers
from gan_jax.models import mlp
from gan_jax.errors import ConfigError, Interrupted, LeaseHeld
from gan_jax.errors import TrainingDiverged, WriteFailed

SAMPLE_SALT = 1234567  # fixed-noise grid: fold_in(PRNGKey(seed), SAMPLE_SALT)
# Fields a rerun in the same workdir may change: extending a run is resuming.
# Fields in which models trained in one vmapped program may differ.
VMAPPED_FIELDS = ('seed',) + tuple(
  f'optim.{net}{k}' for net in ('', 'g_', 'd_') for k in ('lr', 'b1', 'b2')
)


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
) -> train_state.TrainState:
  """Trains a GAN as `config` says, writing everything into `workdir`.

  Resumes from the newest usable checkpoint in `workdir/checkpoints`; a
  finished run is reported and left as it is. A workdir whose config.json
  differs from `config` (rundir.check_workdir) is refused unless
  `allow_config_change`. SIGTERM/SIGINT save a checkpoint of the current
  step and raise Interrupted. Returns the final TrainState.
  With config.num_models = K > 1, trains member_configs(config) in one
  program into `workdir/model_<i>` and returns their stacked states.
  """
  if config.num_models > 1:
    configs = member_configs(config)
    workdirs = [rundir.model_dir(workdir, i) for i in range(len(configs))]
  else:
    configs, workdirs = [config], [workdir]
  return train_models(
    configs, workdirs, allow_config_change=allow_config_change
  )


def _check_vmappable(configs) -> None:
  """Models of one program may differ only in VMAPPED_FIELDS (SGD's
  schedules are not in the state: only in the seed)."""
  first = config_lib.to_dict(configs[0])
  vmapped = VMAPPED_FIELDS if configs[0].optim.name == 'adam' else ('seed',)
  for c in configs[1:]:
    changes = config_lib.changes(first, config_lib.to_dict(c))
    other = [k for k in changes if k not in vmapped]
    if other:
      raise ConfigError(
        f'models trained in one program may differ only in '
        f'{", ".join(vmapped)}; these differ too: {", ".join(other)}. '
        'Train them as separate runs.'
      )


class Member:
  """One model's run directory: its config, checkpoints, writers and best."""

  def __init__(self, config, workdir, config_text, writes):
    self.config, self.workdir, self.writes = config, workdir, writes
    self.name = os.path.basename(os.path.normpath(workdir))
    try:
      os.makedirs(workdir, exist_ok=True)
      if writes:
        rundir.write_config(workdir, config_text)
        rundir.write_registered(
          workdir, registry.origins(validate.used(config))
        )
    except OSError as e:
      raise ConfigError(
        f'cannot write to workdir {workdir} ({e.strerror}); pass a '
        'writable --workdir.'
      ) from e
    self.mngr = checkpoint.manager(
      os.path.join(workdir, rundir.CHECKPOINTS),
      config.checkpoint_every,
      config.keep_checkpoints,
      writer=True,
    )
    self.best = rundir.read_best(workdir)  # {'metric', 'step', 'value'}
    self.z_fixed, self.y_fixed, self.grid_cols = sampling.grid_inputs(
      jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_SALT),
      config.num_samples,
      config.model.z_dim,
      config.model.num_classes,
      config.model.z_prior,
    )
    self._writer = None  # opened when the loop first writes

  @property
  def writer(self) -> writers.MetricWriter:
    if self._writer is None:
      self._writer = writers.MetricWriter(self.workdir if self.writes else None)
    return self._writer

  def restore(self, state):
    """This member's newest usable checkpoint, or `state` when none."""
    restored = checkpoint.restore_latest(self.mngr, state)
    if restored is None:
      return state
    console.say(
      f'resumed from step {int(restored.step)} in {self.mngr.directory}'
    )
    return restored

  def log(self, step: int, row: dict) -> None:
    self.writer.scalars(step, row)

  def write_samples(self, run: 'Setup', state, step: int) -> None:
    """The fixed-noise picture at `step`: samples/ and TensorBoard."""
    samples = run.sampler(state, self.z_fixed, self.y_fixed)
    picture = writers.picture(
      samples, run.dataset, run.source, self.grid_cols, f'step {step}'
    )
    if self.writes:
      rundir.save_png(rundir.sample_path(self.workdir, step), picture)
    self.writer.image(step, 'samples', picture)

  def evaluate(self, run: 'Setup', state, step: int, last: bool) -> None:
    """Evaluates G; keeps the best checkpoint; results.json at the end."""
    record = evaluate.evaluate_state(
      run.evaluator, run.sampler, state, self.config
    )
    if run.probe:
      record['metrics'] |= run.probe(state)
    console.say(
      f'{self.name} step {step}: '
      f'{console.scores(record["metrics"], record["real_data"])} '
      f'({record["seconds"]:.1f} s)'
    )
    self.writer.scalars(
      step,
      {f'eval/{k}': v for k, v in record['metrics'].items()}
      | {'eval/seconds': record['seconds']},
    )
    metric = self.config.eval.best_metric
    value = record['metrics'].get(metric)
    best = self.best and self.best['value']
    if metric and metrics.is_better(metric, value, best):
      best_mngr = checkpoint.manager(
        os.path.join(self.workdir, rundir.BEST_CHECKPOINT), 1, 1, writer=True
      )
      try:
        if step in best_mngr.all_steps():  # a resumed run saves it again
          best_mngr.delete(step)
        checkpoint.save(best_mngr, step, state, force=True)
      finally:
        checkpoint.close(best_mngr)
      self.best = {'metric': metric, 'step': step, 'value': value}
      if self.writes:
        rundir.write_best(self.workdir, self.best)
    if last and self.writes:
      rundir.write_results(self.workdir, record | {'best': self.best})

  def summary(self) -> None:
    """Where the run is and how it ended: final metrics, best step."""
    console.say(f'run directory: {self.workdir}')
    results = rundir.read_results(self.workdir) or {}
    if results.get('metrics'):
      console.say(
        f'  step {results["step"]}: '
        f'{console.scores(results["metrics"], results.get("real_data"))}'
      )
    if self.best:
      console.say(
        f'  best: step {self.best["step"]} by {self.best["metric"]} '
        f'({self.best["value"]:.3g}), kept in '
        f'{os.path.join(self.workdir, rundir.BEST_CHECKPOINT)}'
      )
    console.say(f'  samples: {os.path.join(self.workdir, rundir.SAMPLES)}')

  def save(self, step: int, state) -> None:
    checkpoint.save(self.mngr, step, state, force=True)

  def close(self) -> None:
    """Closes the checkpoint manager (after its last save), then the
    writers, each even when the other fails; OSError when a write failed."""
    try:
      checkpoint.close(self.mngr)
    finally:
      if self._writer is not None:
        self._writer.close()


@dataclasses.dataclass
class Setup:
  """Everything the loop reads: the run's parts, built by `setup`."""

  config: Any  # the first member's; the others differ in VMAPPED_FIELDS
  members: list[Member]
  dataset: Any  # the data.DATASETS entry
  source: Any  # its arrays, replicated on every device
  evaluator: evaluate.Evaluator | None
  probe: overfitting.Probe | None  # D on training and held-out images
  gan: train_state.GAN
  state: train_state.TrainState  # stacked on a model axis for K > 1
  first_step: int
  train_fn: Any  # (state, source) -> (state, metrics), steps_per_dispatch
  sampler: generator.Sampler

  def member_state(self, state, i: int):
    if len(self.members) == 1:
      return state
    return jax.tree.map(lambda x: x[i], state)


def _mesh(config):
  """One `data` axis over every device of every process."""
  n_dev = jax.device_count()
  if config.batch_size % n_dev:
    raise ConfigError(
      f'config.batch_size={config.batch_size} is not divisible by the '
      f'{n_dev} devices; use a multiple of {n_dev}.'
    )
  return jax.make_mesh(
    (n_dev,), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )


def _initial_states(members, init, replicated) -> list:
  """Each member's state from its seed or its newest checkpoint; members
  stopped during a save go back to the step they all have (from their seed
  when one has none), and their newer checkpoints are deleted: training
  saves those steps again, bitwise the same."""
  fresh = [init(jax.random.PRNGKey(m.config.seed)) for m in members]
  states = [m.restore(s) for m, s in zip(members, fresh)]
  first = min(int(s.step) for s in states)
  for i, (m, s) in enumerate(zip(members, states)):
    if int(s.step) > first:
      for step in [t for t in m.mngr.all_steps() if t > first]:
        m.mngr.delete(step)
      console.say(f'{m.name}: back to step {first}, the step all members have')
      states[i] = (
        checkpoint.restore_step(m.mngr, s, first) if first else fresh[i]
      )
  return [
    jax.device_put(
      train_state.set_hyperparameters(s, m.config.optim), replicated
    )
    for m, s in zip(members, states)
  ]


def _environment(config, step: int) -> dict:
  """Where this start of the run executes, and what the backend chose."""
  return {
    'step': step,
    'time': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    'backend': jax.default_backend(),
    'device_kind': jax.devices()[0].device_kind,
    'devices': jax.device_count(),
    'processes': jax.process_count(),
    'jax': jax.__version__,
    'flax': flax.__version__,
    'model': models.resolved(config.model),
  }


@contextlib.contextmanager
def leases(workdirs):
  """Holds the lease of every workdir (gan_jax.lease) inside the block:
  process 0 takes them, and every process raises LeaseHeld when it could
  not (the other processes of a multi-host run write nothing themselves)."""
  held, error = [], None
  if jax.process_index() == 0:
    try:
      for w in workdirs:
        held.append(lease.Lease(w).acquire())
    except LeaseHeld as e:
      error = e
  try:
    if not checkpoint.all_processes(error is None):
      raise error or LeaseHeld(
        f'process 0 could not take the lease of {", ".join(workdirs)}.'
      )
    yield
  finally:
    for h in held:
      h.release()


def setup(configs, workdirs, allow_config_change) -> Setup:
  """Builds the run from validated configs whose workdirs this process
  holds (`leases`): input errors leave nothing written."""
  config = configs[0]
  mesh = _mesh(config)
  replicated = NamedSharding(mesh, P())
  texts = [
    rundir.check_workdir(c, w, allow_config_change)
    for c, w in zip(configs, workdirs)
  ]
  # ---- Input: the whole dataset on every device (images as uint8).
  dataset = data.DATASETS[config.data.name]
  host = dataset.load(config.data)
  output_bias = None
  if config.model.g.get('output_bias') == 'marginals':
    output_bias = mlp.marginal_bias(host['images'])
  source = jax.device_put(host, replicated)
  # Reference data and feature network (the LeNet is trained on first use).
  evaluator = None
  if metrics.names(config.eval):
    with console.phase(
      f'preparing the evaluation ({config.eval.metrics} on '
      f'{config.eval.num_samples} samples, {config.eval.feature_net} '
      'features)'
    ):
      evaluator = evaluate.Evaluator(config)
  probe = evaluator and overfitting.probe(config, dataset, host)
  # ---- Run directories (config.json) and states, resumed where they can be.
  writes = jax.process_index() == 0
  members = [
    Member(c, w, t, writes) for c, w, t in zip(configs, workdirs, texts)
  ]
  gan = train_state.build(config, dataset.shape, axis_name=ts.AXIS)
  init = jax.jit(
    lambda k: train_state.init_state(
      gan,
      config.model.z_dim,
      dataset.shape,
      k,
      config.ema_decay > 0,
      output_bias,
      train_state.initial_adaptive(config),
    ),
    out_shardings=replicated,
  )
  states = _initial_states(members, init, replicated)
  environment = _environment(config, int(states[0].step))
  for m in members:  # a finished run is left untouched
    if m.writes and environment['step'] < config.num_steps:
      try:
        rundir.append_environment(m.workdir, environment)
      except OSError as e:
        raise WriteFailed(
          f'cannot write {e.filename or m.workdir}: {e.strerror}; free '
          'space (or pass a writable --workdir), then rerun the same command.'
        ) from e
  # ---- Update step and sampler.
  return Setup(
    config=config,
    members=members,
    dataset=dataset,
    source=source,
    evaluator=evaluator,
    probe=probe,
    gan=gan,
    state=states[0] if len(states) == 1 else _stack(states),
    first_step=int(states[0].step),
    train_fn=ts.make_train_fn(mesh, config, gan, num_models=len(states)),
    sampler=generator.Sampler(gan.g, config),
  )


def train_models(
  configs, workdirs, *, allow_config_change: bool = False
) -> train_state.TrainState:
  """Trains models that differ only in VMAPPED_FIELDS, one per workdir.

  One model runs as is; K > 1 run as one vmapped program and the returned
  state has a leading model axis. See train_and_evaluate.
  """
  for c in configs:
    validate.validate(c)
  _check_vmappable(configs)
  with leases(workdirs):
    return _train(setup(configs, workdirs, allow_config_change))


def _train(run: Setup) -> train_state.TrainState:
  """The loop of a set-up run, or nothing to do when it is finished."""
  workdirs = [m.workdir for m in run.members]
  if run.first_step >= run.config.num_steps:
    for m in run.members:
      m.close()
    print(
      f'{", ".join(workdirs)} finished at step {run.first_step} (num_steps='
      f'{run.config.num_steps}); nothing to do. Raise --config.num_steps to '
      'train further.'
    )
    return run.state
  console.say(
    f'training {", ".join(m.name for m in run.members)} from step '
    f'{run.first_step} to {run.config.num_steps}'
  )
  return loop(run)


@contextlib.contextmanager
def preemption():
  """Yields the list of SIGTERM/SIGINT received inside the block (in the
  main thread); the previous handlers are back on exit."""
  stop, handlers = [], {}
  if threading.current_thread() is threading.main_thread():
    for signum in (signal.SIGTERM, signal.SIGINT):
      handlers[signum] = signal.signal(signum, lambda n, _: stop.append(n))
  try:
    yield stop
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)


def _host_rows(metrics_, k_models: int, step: int, members) -> list[dict]:
  """Each member's last metrics of the dispatch, checked finite."""
  host = jax.device_get(metrics_)
  rows = [
    {k: float(np.reshape(v, (k_models, -1))[i, -1]) for k, v in host.items()}
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
  return rows


def loop(run: Setup) -> train_state.TrainState:
  """The updates from run.first_step to num_steps, with the members' hooks.

  A signal saves the current step (one more dispatch if it is not saved
  yet), then raises Interrupted; one that arrives during the last step's
  hooks lets the run finish (results.json, summary) and raises after, so a
  sweep stops too. No state is saved unchecked for NaN. A record or
  checkpoint that cannot be written (a full disk) ends the run with
  WriteFailed, once every member is closed (`_write_failed`).
  """
  config, members, k = run.config, run.members, len(run.members)
  every = config.steps_per_dispatch
  state, step, saved = run.state, run.first_step, run.first_step
  t_last, s_last = time.perf_counter(), step
  bar = console.bar(config.num_steps, initial=step, shown=members[0].writes)
  failed = None  # the first OSError of a write
  try:
    with preemption() as stop:
      while step < config.num_steps and not (stop and saved == step):
        state, metrics_ = run.train_fn(state, run.source)
        step += every
        bar.update(every)
        if step == run.first_step + every:  # exclude compiling
          jax.block_until_ready(state)
          t_last, s_last = time.perf_counter(), step
        last = step == config.num_steps
        due_log = step % config.log_every == 0 or last
        due_ckpt = step % config.checkpoint_every == 0 or last or bool(stop)
        if due_log or due_ckpt:  # never checkpoint a state not checked finite
          rows = _host_rows(metrics_, k, step, members)
        if due_log:
          t_now = time.perf_counter()
          rate = (step - s_last) / (t_now - t_last)
          t_last, s_last = t_now, step
          for m, row in zip(members, rows):
            m.log(step, row | _rates(rate, config.batch_size, len(members)))
          bar.set_postfix(
            d_loss=f'{rows[0]["d_loss"]:.3f}',
            g_loss=f'{rows[0]["g_loss"]:.3f}',
            refresh=False,
          )
        _hooks(run, state, step, last, due_ckpt)
        saved = step if due_ckpt else saved
  except OSError as e:
    failed = e
  finally:
    bar.close()
    for m in members:  # all of them, whatever failed
      try:
        m.close()
      except OSError as e:
        failed = failed or e
  if failed:
    raise _write_failed(members, failed) from failed
  signame = signal.Signals(stop[0]).name if stop else ''
  if stop and step < config.num_steps:
    where = ', '.join(str(m.mngr.directory) for m in members)
    raise Interrupted(
      f'stopped by {signame} at step {step}; its checkpoint is in {where}. '
      'Rerun the same command to resume.'
    )
  for m in members:
    m.summary()
  if stop:
    raise Interrupted(
      f'{", ".join(m.name for m in members)} finished at step {step}, then '
      f'{signame} stopped the program. Rerun the same command to go on '
      '(finished runs are skipped).'
    )
  return state


def _write_failed(members, e: OSError) -> WriteFailed:
  """The one line a failed write ends the run with: what could not be
  written and why, and the step the same command resumes from (the newest
  complete checkpoint of every member: read once they are closed)."""
  steps = [
    max(checkpoint.committed_steps(str(m.mngr.directory)), default=0)
    for m in members
  ]
  folders = ', '.join(str(m.mngr.directory) for m in members)
  resume = (
    f'the newest complete checkpoint is step {min(steps)} in {folders}'
    if min(steps)
    else f'there is no complete checkpoint in {folders} yet'
  )
  why, fix = e.strerror or str(e), 'Fix that'
  if e.errno in (errno.ENOSPC, errno.EDQUOT):
    why, fix = f'the disk is full ({why})', 'Free space'
  where = e.filename or ', '.join(m.workdir for m in members)
  return WriteFailed(
    f'cannot write {where}: {why}; {resume}. {fix}, then rerun the same '
    'command to resume.'
  )


def _rates(steps_per_sec: float, batch_size: int, models: int) -> dict:
  """The logged rates: each model's updates/s and images/s, and the models
  its program trains at once (a vmapped program's models share its rate)."""
  return {
    'steps_per_sec': steps_per_sec,
    'images_per_sec': steps_per_sec * batch_size,
    'program_models': models,
  }


def _hooks(run: Setup, state, step: int, last: bool, due_ckpt: bool) -> None:
  """Samples, evaluations and checkpoints of every member due at `step`."""
  config = run.config
  due_eval = run.evaluator and (
    last or (config.eval.every and step % config.eval.every == 0)
  )
  for i, m in enumerate(run.members):
    member_state = run.member_state(state, i)
    if step % config.sample_every == 0 or last:
      m.write_samples(run, member_state, step)
    if due_eval:
      m.evaluate(run, member_state, step, last)
    if due_ckpt:
      m.save(step, member_state)


def _stack(states):
  """K states -> one with a leading model axis on every leaf."""
  return jax.tree.map(lambda *x: jnp.stack(x), *states)
