"""Generator/discriminator families, chosen by `config.model.name`.

Every family is a pair of Linen modules built by `build(model_config, shape,
axis_name)`:
  generator(z: (B, z_dim), train) -> images (B, *shape) in [-1, 1]
  discriminator(x: (B, *shape), train) -> logits (B,)
Linen rather than NNX because every step is a pure function of parameter
pytrees: `apply(variables, ..., mutable=['batch_stats'])` is exactly that, and
the same pytrees pass unchanged through shard_map, scan, vmap and Orbax.
BatchNorm statistics are averaged over `axis_name` when called inside
shard_map, so they are those of the global batch. The 'batch_stats'
collection also holds D's spectral-norm power-iteration state (norms.spectral).
Families: 'mlp' (Goodfellow et al. 2014), 'dcgan' (Radford et al. 2016;
28x28 or 32x32), 'resnet' (SNGAN ResNet, Miyato et al. 2018; 32x32).
"""

from gan_jax.models import dcgan, mlp, resnet

MODELS = {
  'dcgan': (dcgan.Generator, dcgan.Discriminator),
  'mlp': (mlp.Generator, mlp.Discriminator),
  'resnet': (resnet.Generator, resnet.Discriminator),
}


def build(model_config, shape, axis_name=None):
  """Returns (generator, discriminator) modules for images of `shape`."""
  g_cls, d_cls = MODELS[model_config.name]
  return (
    g_cls(shape=tuple(shape), axis_name=axis_name, **model_config.g),
    d_cls(axis_name=axis_name, **model_config.d),
  )
