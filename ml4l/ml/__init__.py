"""Machine-learning parts shared by every use case: splits, statistics, metrics, the trainer contract."""
