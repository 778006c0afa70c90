"""Dataset adapters: one per official on-disk layout (see each adapter's docstring).

``get_adapter(layout).enumerate(root, dataset=NAME, **options) -> list[VideoRecord]``;
``enumerate_dataset`` does the same plus a uniqueness check of ``video_id``.
"""

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    UnknownLayoutError,
    VideoRecord,
    enumerate_dataset,
    get_adapter,
    list_layouts,
)

__all__ = [
    "Adapter",
    "DatasetLayoutError",
    "UnknownLayoutError",
    "VideoRecord",
    "enumerate_dataset",
    "get_adapter",
    "list_layouts",
]
