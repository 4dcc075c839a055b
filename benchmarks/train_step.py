"""MNIST DCGAN train step: gan_jax against a PyTorch eager reference.

  python benchmarks/train_step.py [--batches 64,128] [--steps-per-dispatch 10]
      [--repeats 7] [--max-background 0.25] [--dtype float32|bfloat16]
  python -m benchmarks.train_step ...

Prints the machine (processor, cores, JAX backend and device kind), then for
each batch size the images/s of one full GAN iteration (one D step on real and
fake, one non-saturating G step, Adam 2e-4 / b1 0.5) in gan_jax
(`ts.make_train_fn` of experiments/mnist_dcgan.py: a jitted scan of
`--steps-per-dispatch` iterations) and in PyTorch eager mode (the same
architecture and iteration, written below, torch.set_num_threads(cores)):
the median of `--repeats` timed runs of `--steps-per-dispatch` iterations each
after a warm-up, with min and max, and the ratio gan_jax / PyTorch. Runs of
the two alternate, and a round whose runs saw other processes use more than
`--max-background` cores (read from /proc/stat) is dropped and redone, up to
3 x `--repeats` rounds; the line says how many were dropped. Then the FLOPs
of one gan_jax iteration from XLA's cost analysis of the compiled train
function, an analytic count of its matrix products by layer, the achieved
FLOP/s and its ratio to a measured matmul of the same dtype (jnp.dot of
n x n under jit, the better of n = 1024 and 2048, median of repeats).
On a GPU backend PyTorch runs on CUDA when its build has it.
Both run on synthetic uint8 images scaled to [-1, 1], in float32, or with
`--dtype bfloat16` in mixed precision (gan_jax: config.compute_dtype;
PyTorch: torch.autocast; the matmul reference then multiplies bfloat16).
Without torch (`pip install -e '.[bench]'`) only the gan_jax numbers print.
"""

import argparse
import os
import platform
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments import mnist_dcgan  # noqa: E402
from benchmarks.load import measure, timed  # noqa: E402
from gan_jax import data, models, train_state, train_step as ts  # noqa: E402

SHAPE = (28, 28, 1)
NUM_IMAGES = 10_000  # synthetic uint8 "training set" both sample from


def describe(values, fmt='.1f'):
  return (
    f'{statistics.median(values):{fmt}} '
    f'(min {min(values):{fmt}}, max {max(values):{fmt}})'
  )


# ---- gan_jax -----------------------------------------------------------------


def _config(smoke=False):
  """The benchmarked DCGAN: mnist_dcgan's radford recipe (its smoke widths)."""
  return mnist_dcgan.get_config('recipe=radford' + (',smoke' if smoke else ''))


def jax_setup(batch, steps, dtype='float32', conv='auto', smoke=False):
  """(train_fn, state, images) for the MNIST DCGAN config at `batch`, with
  `conv` ('auto', 'gemm' or 'xla') for both networks."""
  config = _config(smoke)
  config.batch_size, config.steps_per_dispatch = batch, steps
  config.compute_dtype = dtype
  config.model.g.conv = config.model.d.conv = conv
  mesh = jax.make_mesh(
    (jax.device_count(),), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  g, d = models.build(config.model, SHAPE, axis_name=ts.AXIS)
  g_tx, d_tx = train_state.make_optimizers(config.optim)
  state = train_state.init_state(
    train_state.GAN(g, d, g_tx, d_tx),
    config.model.z_dim,
    SHAPE,
    jax.random.PRNGKey(0),
  )
  images = jax.tree.map(jnp.asarray, data.random_images(NUM_IMAGES, SHAPE))
  return (
    ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx)),
    state,
    images,
  )


def cost_flops(fn, *args):
  """XLA's cost-analysis FLOPs of the compiled `fn(*args)`."""
  cost = fn.lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per executable
    cost = cost[0]
  return float(cost['flops'])


class JaxRunner:
  """Runs `steps` gan_jax iterations per call, compiled and warmed up."""

  def __init__(self, batch, steps, dtype, conv='auto', smoke=False):
    self.fn, self.state, self.images = jax_setup(
      batch, steps, dtype, conv, smoke
    )
    for _ in range(2):
      self()

  def __call__(self):
    self.state, metrics = self.fn(self.state, self.images)
    jax.block_until_ready((self.state, metrics))


def gemm_flops_per_image():
  """{layer: FLOPs per image} of the matrix products of one iteration.

  2 * M * K * N per product, the products JAX needs: G forward once and its
  weight and input gradients (none for z); D forward three times (real, fake
  in the D step, fake in the G step); in the D step weight gradients on real
  and fake, input gradients of every layer but the first; in the G step input
  gradients of every layer down to the image, no weight gradients.
  """
  model = _config().model
  width_g, width_d, z_dim = model.g.width, model.d.width, model.z_dim
  g0, d1 = width_g << 1, width_d << 1  # 256 (7x7), 128 (7x7)
  forward = {
    'G dense z->7x7x256': z_dim * 49 * g0,
    'G up 7x7x256->14x14x128': 49 * g0 * 16 * width_g,
    'G up 14x14x128->28x28x1': 196 * width_g * 16 * SHAPE[2],
    'D conv 28x28x1->14x14x64': 196 * 16 * SHAPE[2] * width_d,
    'D conv 14x14x64->7x7x128': 49 * 16 * width_d * d1,
    'D dense 7x7x128->1': 49 * d1,
  }
  # Products per forward product: G dense 1 + dW; G up 1 + dW + dX; D 3
  # forwards + 2 dW + 2 dX (D step) + 1 dX (G step), no dX of D's first conv
  # in the D step.
  times = [2, 3, 3, 6, 8, 8]
  return {k: 2 * v * n for (k, v), n in zip(forward.items(), times)}


def matmul_flops(n, dtype, repeats=10):
  """Median FLOP/s of jnp.dot of two n x n `dtype` matrices under jit."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
  dot = jax.jit(jnp.dot)
  jax.block_until_ready(dot(a, b))
  times = [
    timed(lambda: jax.block_until_ready(dot(a, b)))[0] for _ in range(repeats)
  ]
  return 2 * n**3 / statistics.median(times)


# ---- PyTorch eager reference -------------------------------------------------


class TorchRunner:
  """The same GAN iteration in PyTorch eager mode (NCHW, float32 parameters;
  forwards under torch.autocast for bfloat16).

  Initialisers are PyTorch's defaults (speed does not depend on them). D's
  parameters are frozen during the G step, so, as in gan_jax, the G step
  computes no D weight gradients.
  """

  def __init__(self, batch, steps, dtype, smoke=False):
    import torch  # pylint: disable=g-import-not-at-top
    from torch import nn  # pylint: disable=g-import-not-at-top

    model = _config(smoke).model
    width_g, width_d, z_dim = model.g.width, model.d.width, model.z_dim
    self.torch, self.batch, self.steps, self.z_dim = torch, batch, steps, z_dim
    self.device = dev = torch_device(torch)
    self.autocast = lambda: torch.autocast(
      dev, dtype=torch.bfloat16, enabled=dtype == 'bfloat16'
    )
    torch.manual_seed(0)
    g0 = width_g * 2
    # BatchNorm: PyTorch momentum 0.1 == Flax momentum 0.9; eps 1e-5 in both.
    self.g = nn.Sequential(
      nn.Linear(z_dim, 49 * g0, bias=False),
      nn.BatchNorm1d(49 * g0),
      nn.ReLU(),
      nn.Unflatten(1, (g0, 7, 7)),
      nn.ConvTranspose2d(g0, width_g, 4, 2, 1, bias=False),
      nn.BatchNorm2d(width_g),
      nn.ReLU(),
      nn.ConvTranspose2d(width_g, 1, 4, 2, 1),
      nn.Tanh(),
    )
    self.d = nn.Sequential(
      nn.Conv2d(1, width_d, 4, 2, 1),
      nn.LeakyReLU(0.2),
      nn.Conv2d(width_d, 2 * width_d, 4, 2, 1, bias=False),
      nn.BatchNorm2d(2 * width_d),
      nn.LeakyReLU(0.2),
      nn.Flatten(),
      nn.Linear(49 * 2 * width_d, 1),
    )
    self.g, self.d = self.g.to(dev), self.d.to(dev)
    adam = {'lr': 2e-4, 'betas': (0.5, 0.999)}
    self.g_opt = torch.optim.Adam(self.g.parameters(), **adam)
    self.d_opt = torch.optim.Adam(self.d.parameters(), **adam)
    self.bce = nn.BCEWithLogitsLoss()
    self.ones = torch.ones(batch, device=dev)
    self.zeros = torch.zeros(batch, device=dev)
    self.images = torch.from_numpy(
      np.random.default_rng(0).integers(
        0, 256, (NUM_IMAGES, 1, 28, 28), np.uint8
      )
    ).to(dev)
    for _ in range(2):
      self()

  def step(self):
    torch = self.torch
    idx = torch.randint(
      0, self.images.shape[0], (self.batch,), device=self.device
    )
    real = self.images[idx].float() / 127.5 - 1.0
    with self.autocast():
      fake = self.g(torch.randn(self.batch, self.z_dim, device=self.device))
    # D step: D(real) and D(fake) as two batches (two BatchNorm batches).
    self.d_opt.zero_grad(set_to_none=True)
    with self.autocast():
      real_logits, fake_logits = self.d(real), self.d(fake.detach())
    d_loss = self.bce(real_logits[:, 0].float(), self.ones) + self.bce(
      fake_logits[:, 0].float(), self.zeros
    )
    d_loss.backward()
    self.d_opt.step()
    # G step: non-saturating loss through the updated D.
    self.d.requires_grad_(False)
    self.g_opt.zero_grad(set_to_none=True)
    with self.autocast():
      logits = self.d(fake)
    g_loss = self.bce(logits[:, 0].float(), self.ones)
    g_loss.backward()
    self.g_opt.step()
    self.d.requires_grad_(True)
    return d_loss, g_loss

  def __call__(self):
    for _ in range(self.steps):
      d_loss, g_loss = self.step()
    d_loss.item(), g_loss.item()


def torch_device(torch):
  """'cuda' on a GPU backend when PyTorch has CUDA, else 'cpu'."""
  gpu = jax.default_backend() == 'gpu' and torch.cuda.is_available()
  return 'cuda' if gpu else 'cpu'


def import_torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch


# ---- main --------------------------------------------------------------------


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batches', default='64,128')
  parser.add_argument('--steps-per-dispatch', type=int, default=10)
  parser.add_argument('--repeats', type=int, default=7)
  parser.add_argument('--max-background', type=float, default=0.25)
  parser.add_argument(
    '--dtype', choices=('float32', 'bfloat16'), default='float32'
  )
  args = parser.parse_args()
  batches = [int(b) for b in args.batches.split(',')]
  steps = args.steps_per_dispatch

  torch = import_torch()
  cores = os.cpu_count()
  print(
    f'machine: {platform.processor() or platform.machine()}, {cores} cores; '
    f'jax {jax.__version__}, backend {jax.default_backend()}, '
    f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  )
  if torch is None:
    print(
      "torch is not installed: pip install -e '.[bench]' for the PyTorch "
      'reference. gan_jax numbers only.'
    )
  else:
    torch.set_num_threads(cores)
    print(
      f'torch {torch.__version__} on {torch_device(torch)}, eager, NCHW, '
      f'torch.set_num_threads(os.cpu_count()) -> {torch.get_num_threads()} '
      'threads'
    )
  print(
    f'{args.dtype}; images/s: median (min, max) of {args.repeats} runs of '
    f'{steps} iterations each, after a warm-up'
  )

  last = None
  for batch in batches:
    runners = {'gan_jax': JaxRunner(batch, steps, args.dtype)}
    if torch is not None:
      runners['pytorch'] = TorchRunner(batch, steps, args.dtype)
    times, loads, dropped = measure(runners, args.repeats, args.max_background)
    if not loads:
      print(
        f'batch {batch}: no round had background load under '
        f'{args.max_background} cores; rerun on a quieter machine or raise '
        '--max-background'
      )
      continue
    rates = {k: [steps * batch / t for t in v] for k, v in times.items()}
    print(
      f'batch {batch}: '
      + '  '.join(f'{k} {describe(v)}' for k, v in rates.items())
    )
    if torch is not None:
      per_run = [a / b for a, b in zip(rates['gan_jax'], rates['pytorch'])]
      ratio = statistics.median(rates['gan_jax']) / statistics.median(
        rates['pytorch']
      )
      print(
        f'batch {batch}: gan_jax/pytorch {ratio:.2f}x (per round '
        f'{min(per_run):.2f}-{max(per_run):.2f}x)'
      )
    print(
      f'batch {batch}: {len(loads)} rounds, background load '
      f'{describe(loads, ".2f")} cores, {dropped} rounds dropped (> '
      f'{args.max_background})'
    )
    last = batch, runners['gan_jax'], statistics.median(rates['gan_jax'])

  if last is None:
    return
  # ---- FLOPs of the last batch size's gan_jax iteration.
  batch, runner, rate = last
  fn1, state1, images = jax_setup(batch, 1, args.dtype)
  flops = cost_flops(fn1, state1, images)
  flops_n = cost_flops(runner.fn, runner.state, runner.images)
  print(
    f'XLA cost analysis, batch {batch}: {flops / 1e9:.2f} GFLOP for the '
    f'1-iteration train function, {flops_n / 1e9:.2f} GFLOP for the '
    f'{steps}-iteration one (the scan body counted once); '
    f'{flops / batch / 1e6:.1f} MFLOP per image'
  )
  layers = gemm_flops_per_image()
  total = sum(layers.values())
  print(
    f'matrix products per image (analytic): {total / 1e6:.1f} MFLOP, '
    f"{total / (flops / batch):.0%} of XLA's count"
  )
  for k, v in layers.items():
    print(f'  {k:26s} {v / 1e6:6.1f} MFLOP {v / total:6.1%}')
  per_image = flops / batch
  if total > per_image:
    # A loop inside the step (e.g. lax.map) is counted once, too.
    per_image = total
    print(
      "XLA's count is below the matrix products alone (a loop inside the "
      'step counts once): FLOP/s below use the analytic count'
    )
  peaks = {n: matmul_flops(n, jnp.dtype(args.dtype)) for n in (1024, 2048)}
  peak = max(peaks.values())
  achieved = per_image * rate
  print(
    f'{args.dtype} jnp.dot: '
    + ', '.join(f'{n}x{n} {p / 1e9:.1f}' for n, p in peaks.items())
    + ' GFLOP/s'
  )
  print(
    f'gan_jax achieved {achieved / 1e9:.1f} GFLOP/s at batch {batch}, '
    f'{achieved / peak:.0%} of the matmul {peak / 1e9:.1f} GFLOP/s'
  )


if __name__ == '__main__':
  main()
