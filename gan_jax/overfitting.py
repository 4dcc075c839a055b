"""D's overfitting: its outputs on training images against held-out ones.

Karras et al. 2020 (Fig. 1) watch D's outputs on the training set and on a
validation set drift apart as D memorises its training images, and
DiffAugment's code (train_fns.test) logs D's accuracy on both. Every
evaluation scores D in inference mode (running statistics, no dropout, no
augmentation) on the first n = config.eval.d_images training images and the
first n of the test split, which training never reads:
  d_train, d_heldout    mean D(x) = sigmoid(logit) on each set;
  d_gap                 d_train - d_heldout;
  rt_train, rt_heldout  E[sign logit] (ADA's r_t on unaugmented images).
"""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import batching, data, models
from gan_jax.models import conditional

SCALARS = ('d_train', 'd_heldout', 'd_gap', 'rt_train', 'rt_heldout')


class Probe:
  """`probe(state) -> {scalar: float}` of SCALARS for a config's D."""

  def __init__(self, config, dataset, train):
    """train: the training set as `dataset.load` gives it (the run's)."""
    self.m = config.model.pack
    test = dataset.read(config.data, 'test')
    n = min(config.eval.d_images, len(train['labels']), len(test[1]))
    n -= n % self.m  # whole packs
    self.sets = {
      'train': (train['images'][:n], train['labels'][:n]),
      'heldout': (test[0][:n], test[1][:n]),
    }
    self.batch = max(
      self.m, config.eval.batch_size - config.eval.batch_size % self.m
    )
    self.d = models.build(config.model, dataset.shape)[1]
    self.unit = config.data.unit_range

    @jax.jit
    def logits(variables, images, labels):
      x = (
        data.unit_pixels(images) if self.unit else data.symmetric_pixels(images)
      )
      out = self.d.apply(variables, x, labels, train=False)
      return jnp.repeat(conditional.split(out)[0], self.m)  # one per image

    self._logits = logits

  def __call__(self, state) -> dict[str, float]:
    variables = {'params': state.d_params, 'batch_stats': state.d_stats}
    out = {}
    for name, (images, labels) in self.sets.items():
      z = batching.batched(
        lambda x, y: self._logits(variables, x, y),
        (images, labels),
        self.batch,
      )
      out[f'd_{name}'] = float(np.mean(jax.nn.sigmoid(z)))
      out[f'rt_{name}'] = float(np.mean(np.sign(z)))
    out['d_gap'] = out['d_train'] - out['d_heldout']
    return {k: out[k] for k in SCALARS}


def probe(config, dataset, train) -> Probe | None:
  """The config's Probe of the training set `train` (`dataset.load`'s
  arrays), None when it is off (eval.d_images 0, toy data)."""
  if config.eval.d_images == 0 or dataset.kind != 'image':
    return None
  return Probe(config, dataset, train)
