"""The prepared accelerator check: one command, a few minutes, one file.

  python -m benchmarks.accelerator --manual_dir=<MNIST .gz folder> \\
      [--out docs/benchmarks/<device>.md]
  python -m benchmarks.accelerator --smoke        # seconds, on CPU too

For the rare minutes a GPU or TPU is at hand: it records the device, then
measures, in about 7 minutes of device time on one GPU,
  1. the MNIST DCGAN train step (benchmarks/train_step.py's, the `radford`
     recipe) at batch 128 and 1024, in float32 and bfloat16, with both conv
     forms ('gemm' and 'xla'; which one `auto` picks is named), images/s
     median of REPEATS runs of STEPS iterations, beside PyTorch's same
     iteration on the same device when torch is installed (eager);
  2. K models trained vmapped against one after another
     (benchmarks/vmap_models.py) for the ring MLPs and the DCGAN;
  3. steps per dispatch 1, 10, 100 for the ring MLPs (benchmarks/dispatch.py);
  4. a short real run of the main job (experiments/mnist_dcgan.py, no
     evaluation): its steps/s, then a checkpoint restored and timed;
  5. the steps of the two reproductions (experiments/goodfellow2014_mnist.py,
     experiments/mode_collapse.py), seeds vmapped, and the hours their
     full protocols take at those rates.
Each section is written to --out as soon as it is measured, so a run cut
short keeps what it measured. Without MNIST (no --manual_dir/--data_dir that
holds it) section 4 says so and is skipped. --smoke: the smoke models, batch
16 in float32, the ring alone vmapped, a 20-step main job: seconds, on
whatever backend there is.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import flax  # noqa: E402

from benchmarks import dispatch, load, train_step, vmap_models  # noqa: E402
from experiments import goodfellow2014_mnist, mnist_dcgan, mode_collapse  # noqa: E402
from experiments import toy_ring  # noqa: E402
from gan_jax import checkpoint, console, rundir, train  # noqa: E402
from gan_jax.errors import Error  # noqa: E402
from gan_jax.models import dcgan as dcgan_model  # noqa: E402

FULL = {
  'batches': (128, 1024),
  'dtypes': ('float32', 'bfloat16'),
  'steps': 10,
  'repeats': 5,
  'k': 8,
  'train_steps': 2000,
}
SMOKE = {
  'batches': (16,),
  'dtypes': ('float32',),
  'steps': 2,
  'repeats': 1,
  'k': 2,
  'train_steps': 20,
}
CONVS = ('gemm', 'xla')


class Report:
  """Markdown lines, echoed and rewritten to `path` after every section."""

  def __init__(self, path):
    self.path, self.lines = path, []

  def add(self, *lines):
    for line in lines:
      print(line, flush=True)
    self.lines += lines
    if self.path:
      os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
      with open(self.path, 'w') as f:
        f.write('\n'.join(self.lines) + '\n')


def device_section(report, smoke):
  dev = jax.devices()[0]
  report.add(
    f'# Accelerator check: {dev.device_kind}',
    '',
    f'`python -m benchmarks.accelerator{" --smoke" if smoke else ""}`, '
    f'{time.strftime("%Y-%m-%d")}.',
    '',
    f'- backend {jax.default_backend()}, {jax.device_count()} x '
    f'{dev.device_kind}, {jax.process_count()} process(es)',
    f'- host: {platform.processor() or platform.machine()}, '
    f'{os.cpu_count()} cores; jax {jax.__version__}, flax {flax.__version__}',
    f"- `conv: auto` resolves to '{dcgan_model.conv_form('auto')}' here",
    '',
  )


def step_section(report, sizes, smoke):
  """DCGAN step images/s for every batch x dtype x conv, PyTorch beside."""
  torch = train_step.import_torch()
  steps, repeats = sizes['steps'], sizes['repeats']
  report.add(
    '## 1. MNIST DCGAN train step (images/s)',
    '',
    f'Median (min-max) of {repeats} runs of {steps} iterations after a '
    'warm-up. '
    + (
      f'PyTorch {torch.__version__} eager on {train_step.torch_device(torch)}.'
      if torch
      else "PyTorch not installed (pip install -e '.[bench]')."
    ),
    '',
    '| batch | dtype | gemm | xla | pytorch | best gan_jax / pytorch |',
    '| --- | --- | --- | --- | --- | --- |',
  )
  for batch in sizes['batches']:
    for dtype in sizes['dtypes']:
      runners = {
        c: train_step.JaxRunner(batch, steps, dtype, c, smoke) for c in CONVS
      }
      if torch is not None:
        runners['pytorch'] = train_step.TorchRunner(batch, steps, dtype, smoke)
      times, _, _ = load.measure(runners, repeats, float('inf'))
      rates = {k: [steps * batch / t for t in v] for k, v in times.items()}
      med = {k: statistics.median(v) for k, v in rates.items()}
      cells = [
        f'{med[k]:.0f} ({min(rates[k]):.0f}-{max(rates[k]):.0f})'
        if k in med
        else '-'
        for k in (*CONVS, 'pytorch')
      ]
      best = max(med[c] for c in CONVS)
      ratio = f'{best / med["pytorch"]:.2f}x' if 'pytorch' in med else '-'
      report.add(f'| {batch} | {dtype} | {" | ".join(cells)} | {ratio} |')
  report.add('')


def vmap_section(report, sizes, smoke):
  ring = toy_ring.get_config('smoke' if smoke else None)
  dcgan = mnist_dcgan.get_config('recipe=radford')
  k = sizes['k']
  report.add(
    f'## 2. {k} models vmapped against one after another (model-steps/s)',
    '',
    '| models | sequential | vmapped | ratio |',
    '| --- | --- | --- | --- |',
  )
  pairs = [('ring MLPs', ring)] + ([] if smoke else [('MNIST DCGAN', dcgan)])
  for name, config in pairs:
    seq, vm = vmap_models.measure(name, config, k, 1 if smoke else 3)
    report.add(f'| {name} | {seq:.0f} | {vm:.0f} | {vm / seq:.2f}x |')
  report.add('')


def dispatch_section(report, sizes, smoke):
  spds = (1, 10) if smoke else (1, 10, 100)
  total = 20 if smoke else 400
  runners = {s: dispatch.Runner(s, total, smoke) for s in spds}
  times, _, _ = load.measure(runners, sizes['repeats'], float('inf'))
  rates = {s: statistics.median(total / t for t in v) for s, v in times.items()}
  report.add(
    '## 3. Ring MLP GAN: iterations per dispatch (steps/s)',
    '',
    '| steps_per_dispatch | steps/s | x of 1 |',
    '| --- | --- | --- |',
    *(f'| {s} | {r:.0f} | {r / rates[1]:.2f}x |' for s, r in rates.items()),
    '',
  )


def training_section(report, sizes, smoke, args):
  """The main job for a few thousand steps: steps/s, checkpoint restore."""
  config = mnist_dcgan.get_config('smoke' if smoke else None)
  config.num_steps = sizes['train_steps']
  config.eval.metrics = ''
  config.checkpoint_every = config.sample_every = config.num_steps
  config.data.manual_dir, config.data.data_dir = args.manual_dir, args.data_dir
  report.add(
    '## 4. The main job (experiments/mnist_dcgan.py, no evaluation)', ''
  )
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    try:
      train.train_and_evaluate(config, workdir)
    except Error as e:
      report.add(f'Skipped: {e}', '')
      return
    wall = time.perf_counter() - start
    rows, _, _ = rundir.read_metrics(workdir)
    rates = [r['steps_per_sec'] for r in rows if 'steps_per_sec' in r]
    start = time.perf_counter()
    _, _, state = checkpoint.restore_run(workdir)
    jax.block_until_ready(state)
    restore = time.perf_counter() - start
  report.add(
    f'{config.num_steps} updates at batch {config.batch_size} in {wall:.1f} s '
    'with data loading, compilation and the checkpoint save; '
    f'{statistics.median(rates):.1f} steps/s (median of the logged rates); '
    f'restoring the checkpoint {restore:.2f} s (step {int(state.step)}).',
    '',
  )


def protocols_section(report, smoke):
  """The two reproductions' steps, vmapped over seeds as their sweeps run
  them, and the hours their full protocols take at that rate."""
  arg = ',smoke' if smoke else ''
  report.add(
    '## 5. The reproductions at their full protocols',
    '',
    'Seeds vmapped in one program as `--launcher=vmap` runs them; hours = '
    'programs x updates / rate, without evaluations. Goodfellow: the CPU '
    "runs' length (NUM_EPOCHS; the paper gives no count); PacGAN: ring and "
    'grid (the same networks) of each packing.',
    '',
    '| study | seeds | programs | updates | updates/s | hours |',
    '| --- | --- | --- | --- | --- | --- |',
  )

  def row(name, config, seeds, programs, updates):
    """Measures one study's step, adds its row; returns its hours."""
    seeds = 2 if smoke else seeds
    rate = vmap_models.vmapped_rate(config, seeds, 1 if smoke else 3) / seeds
    hours = programs * updates / rate / 3600
    report.add(
      f'| {name} | {seeds} | {programs} | {updates:,} | {rate:.0f} | '
      f'{hours:.2f} |'
    )
    return hours

  gf, mc = goodfellow2014_mnist, mode_collapse
  row(
    'Goodfellow 2014, released step',
    gf.get_config(f'seed=0{arg}'),
    gf.NUM_SEEDS,
    1,
    gf.NUM_EPOCHS * gf.EPOCH,  # the CPU runs' length (the paper gives none)
  )
  pacgan = sum(
    row(
      f'PacGAN ring, m = {pack}',
      mc.get_config(f'pack={pack}{arg}'),
      mc.NUM_SEEDS,
      len(mc.DATASETS),
      mc.NUM_STEPS,
    )
    for pack in ((1, 2) if smoke else mc.PACKS)
  )
  report.add('', f'The PacGAN sweep in all: {pacgan:.2f} h.', '')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=None, help='markdown file to write')
  parser.add_argument('--smoke', action='store_true')
  parser.add_argument('--manual_dir', default=None)
  parser.add_argument('--data_dir', default=None)
  args = parser.parse_args()
  console.quiet_third_party()
  sizes = SMOKE if args.smoke else FULL
  out = args.out
  if out is None and not args.smoke:
    kind = jax.devices()[0].device_kind.lower().replace(' ', '_')
    out = os.path.join('docs', 'benchmarks', f'{kind}.md')
  report = Report(out)
  start = time.perf_counter()
  device_section(report, args.smoke)
  step_section(report, sizes, args.smoke)
  vmap_section(report, sizes, args.smoke)
  dispatch_section(report, sizes, args.smoke)
  training_section(report, sizes, args.smoke, args)
  protocols_section(report, args.smoke)
  report.add(f'Total: {time.perf_counter() - start:.0f} s.')


if __name__ == '__main__':
  main()
