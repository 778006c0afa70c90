r"""Video -> sampled frames -> the tracked face -> aligned crops + landmarks + masks -> Parquet manifest.

Command line::

    python -m datamodules.preprocess --dataset FF++ --layout ffpp --root /data/FaceForensics++ \
        --out data/processed [--frames 32] [--size 256] [--margin 1.3] \
        [--backend auto|mtcnn|dlib|insightface] [--protocol default|sfam] [--workers N] \
        [--option compression=c40]
    python -m datamodules.preprocess --backfill-confounds --dataset FF++ --out data/processed

Programmatic API (what the runner calls; keep the signature stable)::

    preprocess_dataset(name, layout, root, out, **options) -> Path   # out/<name>/manifest.parquet

Per video: ``frames`` indices spread evenly over the whole video (only those are converted to RGB; see
``datamodules.media.video``), then the face pipeline of ``datamodules.media.crop`` (the one
``benchmark.predict`` uses too): detection on downscaled frames, one tracked person, 5-point alignment
into ``size`` x ``size`` with ``margin``, the mask warped by the same matrix, dlib 68 landmarks on the
aligned crop. Crops and masks are lossless PNG, landmarks float32 ``.npy`` ``[68, 2]`` in crop pixels.
Each ok frame's confound features (``datamodules.media.confounds``: face size in source pixels, resize
factor, sharpness, brightness, contrast, JPEG quality of an image source, blockiness of the decoded frame,
head pose) go into its manifest row; ``--backfill-confounds`` adds what an older manifest's crops give.

Output under ``out/<name>/``: ``crops/<method>/<video>/<frame:05d>.png``, ``landmarks/.../*.npy``,
``masks/.../*.png``, ``rows/<method>/<video>.json`` (a finished video's rows, written last and
atomically: it is the resume marker), ``preprocess.json`` (the options; a re-run with other options
refuses unless ``overwrite``) and ``manifest.parquet`` (``datamodules.manifest``).

Every sampled frame has a manifest row; a video that cannot be opened has one row with
``frame_index = -1``. Status values: ``datamodules.manifest.STATUSES``. A named protocol
(``protocols``: ``default``, ``sfam``) excludes faces by rule, as rows with a status and a reason.

One job per module: ``options`` (options, ``preprocess.json`` pinning and the resume check), ``protocols``
(the named face filters), ``video``
(one video's frames, crops and rows), ``prealigned`` (importing already-aligned frames), ``files`` (a
frame's files), ``rows`` (rows and the per-video resume marker), ``summary`` (the final table),
``dataset`` (:func:`preprocess_dataset`, :func:`plan_preprocess`: its checks without writing), ``backfill``
(confound features for an existing manifest), ``cli`` (the
command line; ``__main__`` runs it).
"""

from datamodules.preprocess.cli import main
from datamodules.preprocess.dataset import plan_preprocess, preprocess_dataset, preprocess_options
from datamodules.preprocess.options import Options, PreprocessConfigError, read_pinned
from datamodules.preprocess.protocols import PROTOCOLS, Protocol, get_protocol
from datamodules.preprocess.summary import status_counts, summarize

__all__ = [
    "PROTOCOLS",
    "Options",
    "PreprocessConfigError",
    "Protocol",
    "get_protocol",
    "main",
    "plan_preprocess",
    "preprocess_dataset",
    "preprocess_options",
    "read_pinned",
    "status_counts",
    "summarize",
]
