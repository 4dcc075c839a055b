"""Datasets as device-resident uint8 arrays, and per-step batches.

Image datasets come from their TFDS builders, prepared once as array_record
(readable without TensorFlow). With `manual_dir` set, TFDS takes the original
files from that folder instead of downloading them; if the folder holds a
`SHA256SUMS` file, the files are validated against it rather than against the
upstream checksums TFDS ships (a re-compressed copy has other .gz hashes).
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np


class DataError(RuntimeError):
  """Dataset files missing or unreadable; the message says where they go."""


@dataclasses.dataclass(frozen=True)
class TfdsImages:
  """A TFDS image dataset: `tfds_name`, images of `shape`, uint8."""

  tfds_name: str
  shape: tuple[int, int, int]


DATASETS = {
  'mnist': TfdsImages('mnist', (28, 28, 1)),
}


def _local_url_infos(builder_cls, manual_dir):
  """UrlInfos that validate the files in `manual_dir` against its SHA256SUMS."""
  from tensorflow_datasets.core.download import checksums  # pylint: disable=g-import-not-at-top

  sums_path = os.path.join(manual_dir, 'SHA256SUMS')
  if not os.path.exists(sums_path):
    return None
  with open(sums_path) as f:
    sums = {
      name.lstrip('*'): digest
      for digest, name in (line.split() for line in f if line.strip())
    }
  infos = {}
  for url in builder_cls.url_infos:
    name = os.path.basename(url)
    path = os.path.join(manual_dir, name)
    if name not in sums or not os.path.exists(path):
      raise DataError(
        f'{path} is missing or not listed in {sums_path}. '
        f'Put the original {builder_cls.name} files '
        f'({", ".join(os.path.basename(u) for u in builder_cls.url_infos)}) '
        f'in {manual_dir}.'
      )
    infos[url] = checksums.UrlInfo(
      size=os.path.getsize(path), checksum=sums[name], filename=name
    )
  return infos


def prepare(name: str, data_dir: str | None, manual_dir: str | None) -> None:
  """Prepares TFDS dataset `name` (needs TensorFlow) unless already done."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder_cls = tfds.builder_cls(name)
  if manual_dir:
    if not os.path.isdir(manual_dir):
      raise DataError(
        f'data.manual_dir={manual_dir} is not a folder. Create it and put '
        f'the original {name} files in it, or unset data.manual_dir to let '
        'TFDS download them.'
      )
    infos = _local_url_infos(builder_cls, manual_dir)
    if infos is not None:
      builder_cls = type(
        builder_cls.__name__,
        (builder_cls,),
        {'url_infos': infos, 'name': builder_cls.name},
        skip_registration=True,
      )
  builder = builder_cls(data_dir=data_dir, file_format='array_record')
  try:
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
  except Exception as e:  # TFDS raises many types; all mean the same here.
    where = (
      f'in data.manual_dir={manual_dir}'
      if manual_dir
      else 'downloadable (no network?); set data.manual_dir to a folder '
      'holding them'
    )
    raise DataError(
      f'could not prepare TFDS {name!r} into {builder.data_dir}: the '
      f'original files must be {where}. Cause: '
      f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
    ) from e


def load_images(data_config, split: str = 'train') -> np.ndarray:
  """Returns all images of a split as uint8 (N, H, W, C), preparing if needed."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  spec = DATASETS[data_config.name]
  kwargs = dict(split=split, data_dir=data_config.data_dir, download=False)
  try:
    source = tfds.data_source(spec.tfds_name, **kwargs)
  except Exception:  # not prepared yet (or prepared in another format)
    prepare(spec.tfds_name, data_config.data_dir, data_config.manual_dir)
    source = tfds.data_source(spec.tfds_name, **kwargs)
  try:
    examples = source.__getitems__(range(len(source)))
    images = np.stack([ex['image'] for ex in examples])
  except Exception as e:
    raise DataError(
      f'prepared TFDS {spec.tfds_name!r} under {data_config.data_dir or "~/tensorflow_datasets"} '
      f'is unreadable ({type(e).__name__}); delete its folder and rerun to '
      'prepare it again.'
    ) from e
  if images.shape[1:] != spec.shape or images.dtype != np.uint8:
    raise DataError(
      f'{spec.tfds_name}: expected uint8 images of shape '
      f'{spec.shape}, got {images.dtype} {images.shape[1:]}.'
    )
  return images


def sample_batch(images: jax.Array, key: jax.Array, batch_size: int):
  """Draws `batch_size` images uniformly with replacement, scaled to [-1, 1].

  images: uint8 (N, H, W, C) on device -> float32 (batch_size, H, W, C).
  """
  idx = jax.random.randint(key, (batch_size,), 0, images.shape[0])
  return images[idx].astype(jnp.float32) / 127.5 - 1.0
