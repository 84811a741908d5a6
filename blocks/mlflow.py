"""The MLflow tracking block: where runs and the model registry live."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from ml4l.lake import Lake
from ml4l.train import tracking_uri


class MLflowTracking(Block):
    """MLflow tracking server and registered model name; no URI means the lake's own SQLite store."""

    _block_type_name = "ml4l MLflow Tracking"
    _block_type_slug = "ml4l-mlflow-tracking"
    _description = "MLflow tracking URI (empty: SQLite under the lake) and the registered model name."

    tracking_uri: str | None = Field(default=None, description="e.g. http://127.0.0.1:5000; empty: sqlite under <lake>/mlflow.")
    model_name: str = Field(default="ml4l-lst", description="Registered model name.")

    def uri(self, lake: Lake) -> str:
        """The tracking URI for ``lake``."""
        return self.tracking_uri or tracking_uri(lake)


def resolve_tracking(lake: Lake, mlflow_block: str | None = None, model_name: str | None = None) -> tuple[str, str]:
    """Tracking URI and model name: from a saved :class:`MLflowTracking` block, else the lake's store and ``ml4l-lst``."""
    block = MLflowTracking.load(mlflow_block) if mlflow_block else MLflowTracking()  # type: ignore[union-attr]
    return block.uri(lake), model_name or block.model_name
