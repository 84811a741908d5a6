"""The lake's storage block: where the data lake lives."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from ml4l.lake import Lake


class LakeStorage(Block):
    """Root of the ml4l data lake: a local path or any fsspec URL (``s3://bucket/lake``)."""

    _block_type_name = "ml4l Lake Storage"
    _block_type_slug = "ml4l-lake-storage"
    _description = "Root of the ml4l data lake: a local path or any fsspec URL."

    root: str = Field(default="./lake", description="Lake root: a local path or an fsspec URL.")

    def lake(self) -> Lake:
        """The lake this block points to."""
        return Lake.at(self.root)


def resolve_lake(lake_root: str | None = None, lake_block: str | None = None) -> Lake:
    """The lake to use: an explicit root, else a saved :class:`LakeStorage` block, else ``$ML4L_LAKE`` or ``./lake``."""
    if lake_root:
        return Lake.at(lake_root)
    if lake_block:
        return LakeStorage.load(lake_block).lake()  # type: ignore[union-attr]
    return Lake.at(None)
