"""python -m gan_jax.report DIR [DIR ...] [--out OUT]: see gan_jax.report."""

from gan_jax.report.command import main

if __name__ == '__main__':
  main()
