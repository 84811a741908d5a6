"""Gap filling on a data cube (seed 001): recipe, sample cube, cube checks and land mask, samples and split, models,
evaluation, filling; ``workflow`` holds the steps the flows in ``flows/gapfill.py`` run."""
