"""The MLflow tracking block: the lake's MLflow configuration, where runs and the model registry live."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from ml4l.lake import Lake
from ml4l.usecases.lst.train import tracking_uri


class MLflowTracking(Block):
    """MLflow tracking server and registered model name; no URI means the lake's own SQLite store (a local lake only)."""

    _block_type_name = "ml4l MLflow Tracking"
    _block_type_slug = "ml4l-mlflow-tracking"
    _description = "MLflow tracking URI (empty: SQLite under a local lake) and the registered model name."

    tracking_uri: str | None = Field(default=None, description="e.g. http://mlflow:5000 or postgresql://...; empty: SQLite under "
                                                               "<lake>/mlflow, for a lake in a local folder only.")
    model_name: str = Field(default="ml4l-lst", description="Registered model name.")

    def uri(self, lake: Lake) -> str:
        """The tracking URI for ``lake``: this block's, else the lake's SQLite store when the lake is a local folder."""
        if self.tracking_uri:
            return self.tracking_uri
        if not lake.is_local:
            raise ValueError(
                f"the lake {lake.root} is not a local folder, so its MLflow store cannot be a SQLite file inside it: save an "
                "ml4l-mlflow-tracking block with a tracking_uri (an MLflow server or a database URL) and name it with "
                "--mlflow-block or the deployment's mlflow_block"
            )
        return tracking_uri(lake)


def resolve_tracking(lake: Lake, mlflow_block: str | None = None, model_name: str | None = None) -> tuple[str, str]:
    """Tracking URI and model name: from a saved :class:`MLflowTracking` block, else the lake's store and ``ml4l-lst``."""
    block = MLflowTracking.load(mlflow_block) if mlflow_block else MLflowTracking()  # type: ignore[union-attr]
    return block.uri(lake), model_name or block.model_name
