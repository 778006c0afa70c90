"""UADFV (Yang et al., ICASSP 2019)."""

from __future__ import annotations

from pathlib import Path

from datamodules.datasets.base import Adapter, VideoRecord, register_layout, require_dir, videos_in


@register_layout("uadfv")
class UADFVAdapter(Adapter):
    """UADFV: no official split, so every video is ``test``.

    Expected layout::

        real/*.mp4
        fake/*.mp4
    """

    default_name = "UADFV"

    def enumerate(self, root: str | Path, dataset: str | None = None, **_: object) -> list[VideoRecord]:
        """The records of the UADFV download at ``root``: its ``real/`` and ``fake/`` videos, all test."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "UADFV root")
        out = []
        for folder, label, method in (("real", 0, "real"), ("fake", 1, "fake")):
            for v in videos_in(require_dir(root / folder, self.layout)):
                out.append(
                    VideoRecord(
                        name, "test", label, method, "", f"{name}/{method}/{v.stem}", v, source_label=folder
                    )
                )
        return out
