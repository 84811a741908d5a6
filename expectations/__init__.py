"""The Great Expectations suites, one YAML file per dataset: data shipped with ml4l (``ml4l.quality.SUITES``)."""
