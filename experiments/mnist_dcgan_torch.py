"""The MNIST DCGAN recipe in an independent PyTorch implementation, scored by
the project's evaluation: are gan_jax's numbers the recipe's or the code's?

  python -m experiments.mnist_dcgan_torch --out=runs/dcgan_torch \\
      --config=experiments/mnist_recipe.py --config.ema_decay=0.0 \\
      --seeds=0,1 [--config.data.manual_dir=../shared/data/mnist]

trains the DCGAN that `--config` describes (any config of
experiments/mnist_dcgan.py or experiments/mnist_recipe.py whose fields this
file implements, `check`) with PyTorch eager modules, one run per seed,
and scores it every `config.eval.every` updates and at the end with
gan_jax.evaluate.Evaluator (the same samples count, LeNet features and
reference set as a gan_jax run). Each evaluation is a line of
OUT/seed_<s>.jsonl, {'step', 'metrics', 'real_data', 'protocol'}; a seed
whose file ends at num_steps is skipped, so a rerun finishes the others.

The modules follow gan_jax.models.dcgan for 28x28 images (w = width):
  G: z -> dense 49*2w (no bias), BN, ReLU -> up 4x4 s2 w (no bias), BN,
     ReLU -> up 4x4 s2 1, tanh
  D: conv 4x4 s2 w, LReLU(0.2) -> conv 4x4 s2 2w (no bias), BN,
     LReLU(0.2) -> dense 1
with Flax's initialisers (kernels truncated normal of variance 1/fan_in,
biases 0; BN scale 1, shift 0, eps 1e-5, running averages kept with
momentum 0.9 in Flax's convention), Adam (lr, b1, b2 and eps 1e-8 as
optax), real batches drawn uniformly with replacement, and the alternating
step of gan_jax.updates: G's forward once, D's step on (real, G(z)), then
G's non-saturating step through the updated D on the same G(z), D in
training mode (batch statistics) in both. Samples come from G in
evaluation mode (BN running averages), as gan_jax's trained weights do.
What differs: PyTorch's random streams (initial weights, noise, batches)
and its transposed convolution's alignment (padding 1 against Flax's
'SAME', a one-pixel shift of the kernel's taps).
"""

import json
import math
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags
import numpy as np

from gan_jax import config as config_lib
from gan_jax import console, data, evaluate, train_state
from gan_jax.errors import Error

config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
flags.DEFINE_string('out', None, 'Folder of the seed_<s>.jsonl files.')
flags.DEFINE_list('seeds', ['0'], 'Seeds to train, one run each.')
flags.mark_flags_as_required(['config', 'out'])
FLAGS = flags.FLAGS

# field -> the value this implementation requires.
REQUIRED = {
  'model.name': 'dcgan',
  'model.num_classes': 0,
  'model.pack': 1,
  'model.z_prior': 'normal',
  'model.d.norm': 'batch',
  'model.d.spectral_norm': False,
  'loss': 'non_saturating',
  'optim.name': 'adam',
  'update_scheme': 'alternating',
  'd_steps': 1,
  'r1_gamma': 0.0,
  'r2_gamma': 0.0,
  'penalty_weight': None,
  'instance_noise.std': 0.0,
  'd_weight_clip': 0.0,
  'ema_decay': 0.0,
  'compute_dtype': 'float32',
  'num_models': 1,
  'data.unit_range': False,
  'data.train_fraction': 1.0,
}


def check(config) -> None:
  """Raises Error naming every field whose value this file does not
  implement (REQUIRED), and a dataset that is not 28x28 grey."""
  fields = config_lib.flatten(config_lib.to_dict(config))
  wrong = [
    f'{field}={fields.get(field)!r} (needs {value!r})'
    for field, value in REQUIRED.items()
    if fields.get(field) != value
  ]
  if data.DATASETS[config.data.name].shape != (28, 28, 1):
    wrong.append(f'data.name={config.data.name!r} (needs 28x28x1 images)')
  if wrong:
    raise Error(
      'experiments/mnist_dcgan_torch.py implements the plain DCGAN only; '
      'set or drop: ' + ', '.join(wrong)
    )


def _lecun_normal_(torch, weight, fan_in):
  """Flax's lecun_normal: truncated to +-2 std before rescaling to
  variance 1/fan_in (0.8796 is the std of N(0, 1) truncated to +-2)."""
  std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
  torch.nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)


def build(torch, width_g, width_d, z_dim):
  """(G, D) as torch.nn.Sequential, NCHW, initialised as Flax does."""
  nn = torch.nn
  bn = dict(eps=1e-5, momentum=0.1)  # PyTorch's 0.1 is Flax's 0.9
  g0 = 2 * width_g
  g = nn.Sequential(
    nn.Linear(z_dim, 49 * g0, bias=False),
    nn.BatchNorm1d(49 * g0, **bn),
    nn.ReLU(),
    nn.Unflatten(1, (g0, 7, 7)),
    nn.ConvTranspose2d(g0, width_g, 4, 2, 1, bias=False),
    nn.BatchNorm2d(width_g, **bn),
    nn.ReLU(),
    nn.ConvTranspose2d(width_g, 1, 4, 2, 1),
    nn.Tanh(),
  )
  d = nn.Sequential(
    nn.Conv2d(1, width_d, 4, 2, 1),
    nn.LeakyReLU(0.2),
    nn.Conv2d(width_d, 2 * width_d, 4, 2, 1, bias=False),
    nn.BatchNorm2d(2 * width_d, **bn),
    nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(49 * 2 * width_d, 1),
  )
  with torch.no_grad():
    for m in [*g, *d]:
      if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        linear = isinstance(m, nn.Linear)
        fan_in = m.in_features if linear else m.in_channels * 16  # 4x4
        _lecun_normal_(torch, m.weight, fan_in)
        if m.bias is not None:
          m.bias.zero_()
  return g, d


def _adam(torch, params, config, net):
  """torch Adam with `net`'s hyperparameters as gan_jax resolves them."""
  h = train_state.adam_hparams(config.optim, net)
  return torch.optim.Adam(
    params, lr=h['learning_rate'], betas=(h['b1'], h['b2']), eps=1e-8
  )


def generate(torch, g, n, z_dim, seed, batch=500) -> np.ndarray:
  """n samples (n, 28, 28, 1) in [-1, 1] of G in evaluation mode."""
  gen = torch.Generator().manual_seed(seed)
  g.eval()
  with torch.no_grad():
    out = [
      g(torch.randn(min(batch, n - i), z_dim, generator=gen))
      for i in range(0, n, batch)
    ]
  g.train()
  return torch.cat(out).permute(0, 2, 3, 1).numpy()


def train_seed(torch, config, evaluator, seed, path) -> list[dict]:
  """Trains one seed, appending each evaluation to `path`; returns them."""
  torch.manual_seed(seed)
  z_dim, batch = config.model.z_dim, config.batch_size
  g, d = build(torch, config.model.g.width, config.model.d.width, z_dim)
  g_opt = _adam(torch, g.parameters(), config, 'g')
  d_opt = _adam(torch, d.parameters(), config, 'd')
  bce = torch.nn.BCEWithLogitsLoss()
  ones, zeros = torch.ones(batch), torch.zeros(batch)
  images = data.DATASETS[config.data.name].load(config.data)['images']
  images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  every, steps = config.eval.every, config.num_steps
  evals = []
  with open(path, 'w') as f, console.bar(steps, desc=f'seed {seed}') as bar:
    for step in range(1, steps + 1):
      real = images[torch.randint(0, len(images), (batch,))].float()
      real = real / 127.5 - 1.0
      fake = g(torch.randn(batch, z_dim))
      d_opt.zero_grad(set_to_none=True)
      d_loss = bce(d(real)[:, 0], ones) + bce(d(fake.detach())[:, 0], zeros)
      d_loss.backward()
      d_opt.step()
      d.requires_grad_(False)
      g_opt.zero_grad(set_to_none=True)
      bce(d(fake)[:, 0], ones).backward()
      g_opt.step()
      d.requires_grad_(True)
      bar.update()
      if not math.isfinite(d_loss.item()):
        raise Error(f'seed {seed}: D loss is not finite at update {step}')
      if step == steps or (every and step % every == 0):
        n = config.eval.num_samples
        samples = generate(torch, g, n, z_dim, seed + evaluate.EVAL_SALT)
        record = {
          'step': step,
          'metrics': evaluator(samples),
          'real_data': evaluator.real_data(),
          'protocol': {**evaluator.protocol, 'generator': 'PyTorch, trained'},
        }
        evals.append(record)
        f.write(json.dumps(record) + '\n')
        f.flush()
        console.say(
          f'seed {seed}, step {step}: '
          + console.scores(record['metrics'], record['real_data'])
        )
  return evals


def _finished(path, steps) -> bool:
  try:
    with open(path) as f:
      lines = [json.loads(line) for line in f if line.strip()]
  except (OSError, ValueError):
    return False
  return bool(lines) and lines[-1]['step'] == steps


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:  # Orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  console.quiet_third_party()
  import torch  # pylint: disable=g-import-not-at-top

  config = FLAGS.config
  try:
    check(config)
    os.makedirs(FLAGS.out, exist_ok=True)
    evaluator = evaluate.Evaluator(config)
    for seed in map(int, FLAGS.seeds):
      path = os.path.join(FLAGS.out, f'seed_{seed}.jsonl')
      if _finished(path, config.num_steps):
        console.say(f'seed {seed}: {path} is finished; skipped')
        continue
      train_seed(torch, config, evaluator, seed, path)
  except Error as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
