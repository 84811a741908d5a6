"""Assimilating one day with 25 members on one core: the VAE ensemble's cost at 2 degrees.

The cost of the latent search does not depend on the decoder's weights, so the generator here is
the use case's decoder architecture, untrained, on the demo's 32 x 32 region and on a near-global
2-degree grid (88 x 176 cells); 200 stations, the recipe's iterations. Prints the median of 3.

    .venv/bin/python -m benchmarks.bench_assimilation
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ml4l.usecases.assimilation import analysis
    from ml4l.usecases.assimilation.fields import Grid, interpolation_weights
    from ml4l.usecases.assimilation.recipe import AssimilationRecipe, FieldsConfig
    from ml4l.usecases.assimilation.vae import build_vae

    recipe = AssimilationRecipe()
    a = recipe.analysis
    print(
        f"one day, {a.members} members, {a.iterations} MAP + {a.member_iterations} member Adam iterations, "
        f"latent {recipe.vae.latent}, filters {recipe.vae.filters}, 1 core; reference: <= 60 s"
    )
    for label, config in (("demo region 32 x 32", recipe.fields), ("near-global 88 x 176", FieldsConfig(lat_south=-88, lon_west=0, ny=88, nx=176))):
        grid = Grid.of(config)
        _, decoder = build_vae(grid.shape, recipe.vae)
        prior = analysis.LatentPrior(np.zeros(recipe.vae.latent), np.eye(recipe.vae.latent))
        rng = np.random.default_rng(0)
        lat = rng.uniform(grid.lat[0], grid.lat[-1], 200)
        lon = rng.uniform(grid.lon[0], grid.lon[-1], 200)
        index, weights = interpolation_weights(grid, lat, lon)
        observations = rng.normal(0, 3, (1, 200))
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            analysis.assimilate(decoder, prior, index, weights, observations, 0.5, 0.2, np.array([3.5]), a, analysis.day_seeds(0, ["2008-01-01"]))
            seconds.append(time.perf_counter() - start)
        print(f"  {label:<22} {statistics.median(seconds):7.2f} s per day   ({', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
