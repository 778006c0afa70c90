"""DeepFakeDetection (Google/Jigsaw 2019), shipped inside the FaceForensics++ download."""

from __future__ import annotations

from pathlib import Path

from datamodules.datasets.base import Adapter, VideoRecord, register_layout, require_dir, videos_in
from datamodules.datasets.ffpp import check_compression


@register_layout("dfd")
class DFDAdapter(Adapter):
    """DFD: actor reals and DeepFakeDetection fakes; no official split, so every video is ``test``.

    Expected layout (``root`` = the FF++ download folder)::

        original_sequences/actors/{raw,c23,c40}/videos/<name>.mp4
        manipulated_sequences/DeepFakeDetection/{raw,c23,c40}/videos/<name>.mp4
        manipulated_sequences/DeepFakeDetection/masks/videos/<name>.mp4     # optional

    Option: ``compression`` (``c23``). Fakes have method ``DeepFakeDetection``.
    """

    default_name = "DFD"

    def enumerate(
        self, root: str | Path, dataset: str | None = None, compression: str = "c23", **_: object
    ) -> list[VideoRecord]:
        """The records of DeepFakeDetection (DFD) inside the FF++ download at ``root``, at ``compression``."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "FF++ download root")
        reals = check_compression(root, "original_sequences/actors", compression, self.layout)
        fakes = check_compression(root, "manipulated_sequences/DeepFakeDetection", compression, self.layout)
        masks = root / "manipulated_sequences/DeepFakeDetection/masks/videos"
        out = [
            VideoRecord(
                name, "test", 0, "real", compression, f"{name}/real/{v.stem}", v, source_label="actors"
            )
            for v in videos_in(reals)
        ]
        for v in videos_in(fakes):
            m = masks / v.name
            out.append(
                VideoRecord(
                    name,
                    "test",
                    1,
                    "DeepFakeDetection",
                    compression,
                    f"{name}/DeepFakeDetection/{v.stem}",
                    v,
                    m if m.is_file() else None,
                    source_label="DeepFakeDetection",
                )
            )
        return out
