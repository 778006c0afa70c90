"""Packed crop stores: a preprocessed dataset's crops, landmarks and masks in a few memory-mapped shards.

A dataset folder ``<processed_root>/<dataset>/`` (see :mod:`datamodules.manifest`) may hold ``packed/``:

* ``shard-00000.bin`` ...: raw records, one per ``ok`` manifest row, in ``(video_id, frame_index)``
  order (the order evaluation reads them: sequential I/O). A record is the landmarks as stored
  (``[68, 2]`` float32 from preprocessing), the crop as uint8 RGB ``[H, W, 3]``, the mask as uint8
  ``[H, W]`` when the row has one, each part's bytes exactly as :mod:`datamodules.loading.store`
  decodes the PNG store, records padded to 64 bytes;
* ``index.parquet``: per packed row ``crop_path`` (the key a dataset looks rows up by), ``manifest_row``,
  ``shard``, ``offset``, ``nbytes``, ``checksum`` (xxh3-64 of the record), the crop, landmark and mask
  shapes and the landmarks' dtype;
* ``pack.json`` (written last: a pack without it is unfinished): format version, the manifest's
  fingerprint (SHA-256 and size of ``manifest.parquet`` and SHA-256 of ``preprocess.json``) and every
  shard's file name, byte size and row count.

Chosen by measurement (README "Data loading"): a raw uint8 shard read through ``mmap`` serves a 256 px
crop in ~0.1 ms from the page cache against ~0.8 ms for a level-0 PNG file, at random and sequential
access alike; WebDataset's native tar streaming only reads sequentially (and a tar read by an offset
index is this format with 512-byte headers); LMDB needs a dependency and read cold pages slowest.

Modules: :mod:`~datamodules.pack.format` (names, fingerprint, index columns), :mod:`~datamodules.pack.reader`
(state check, :class:`~datamodules.pack.reader.PackReader`), :mod:`~datamodules.pack.writer`
(:func:`~datamodules.pack.writer.pack_dataset`: resumable, atomic), :mod:`~datamodules.pack.cli`
(``python -m datamodules.pack``).
"""
