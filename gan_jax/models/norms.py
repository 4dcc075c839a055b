"""Normalisations shared by the model families.

batch_norm: BatchNorm (Ioffe & Szegedy 2015); in train mode the mean and
  variance are those of the global batch (averaged over `axis_name`).
normalization(kind): a discriminator's feature normalisation,
  'batch': BatchNorm, mixes the examples of a batch;
  'layer': LayerNorm over (H, W, C) of each example with a per-channel scale
    and bias, as in the WGAN-GP critics of Gulrajani et al. 2017: a gradient
    penalty needs D(x_i) to depend on x_i alone;
  'none': the identity.
spectral: W -> W / sigma(W) (Miyato et al. 2018), sigma(W) the largest
  singular value of the kernel reshaped to (-1, C_out), estimated by power
  iteration on the vector u stored in 'batch_stats'.
"""

import flax.linen as nn

NORMS = ('batch', 'layer', 'none')


BN_MOMENTUM = 0.9  # running <- m running + (1 - m) batch


def batch_norm(train, axis_name, epsilon=1e-5, **kwargs):
  """BatchNorm (momentum BN_MOMENTUM): (x - mean) / sqrt(var + epsilon) with
  the batch's statistics when `train`; `kwargs` go to nn.BatchNorm (e.g.
  use_scale=False)."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=BN_MOMENTUM,
    epsilon=epsilon,
    axis_name=axis_name if train else None,
    **kwargs,
  )


def normalization(kind, train, axis_name):
  """Returns x (B, ..., C) -> normalised x for `kind` in NORMS."""
  if kind == 'batch':
    return batch_norm(train, axis_name)
  if kind == 'layer':
    return lambda x: nn.LayerNorm(
      epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1
    )(x)
  if kind == 'none':
    return lambda x: x
  raise ValueError(f'unknown norm {kind!r}; valid: {", ".join(NORMS)}')


def spectral(layer, enabled, train, n_steps=1):
  """`layer`, or `layer` with each >= 2-d parameter W replaced by W / sigma.

  sigma = v W u^T after `n_steps` power iterations v = uW^T/|uW^T|,
  u = vW/|vW| from the stored u, W reshaped to (-1, C_out); gradients flow
  through sigma but not through u, v. With `train` the new u and sigma are
  written to 'batch_stats' under SpectralNorm_i as '<layer>/kernel/u' (1,
  C_out) and '<layer>/kernel/sigma' (), so apply needs
  mutable=['batch_stats']. The parameter tree is that of the bare layer.
  """
  if not enabled:
    return layer
  if n_steps < 1:
    raise ValueError(f'spectral norm needs >= 1 power iteration, got {n_steps}')
  wrapped = nn.SpectralNorm(
    layer, n_steps=n_steps, collection_name='batch_stats'
  )
  return lambda x: wrapped(x, update_stats=train)
