"""``python -m datamodules.pack --dataset X --processed-root R``: pack an existing PNG store (resumable).

``--verify`` reads every record of the (finished) pack and checks its checksum; ``--shard-rows`` sets
the rows per shard (a different value repacks from scratch).
"""

from __future__ import annotations

import argparse

from datamodules.manifest import DataError, manifest_path
from datamodules.pack.writer import DEFAULT_SHARD_ROWS, describe, pack_dataset


def main(argv: list[str] | None = None) -> int:
    """Command line: pack one dataset's crops into shards; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m datamodules.pack", description=__doc__)
    p.add_argument("--dataset", required=True, help="dataset name (its folder under --processed-root)")
    p.add_argument(
        "--processed-root", required=True, help="where preprocessing wrote <dataset>/manifest.parquet"
    )
    p.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="rows per shard")
    p.add_argument("--verify", action="store_true", help="check every record's checksum after packing")
    args = p.parse_args(argv)
    if args.shard_rows <= 0:
        p.error(f"--shard-rows must be positive, got {args.shard_rows}")
    try:
        folder = pack_dataset(
            manifest_path(args.processed_root, args.dataset).parent,
            args.dataset,
            shard_rows=args.shard_rows,
            progress=True,
        )
        print(describe(folder))
        if args.verify:
            from datamodules.pack.reader import PackReader

            n = PackReader.open(folder.parent).verify()
            print(f"verified {n:,} records")
    except (DataError, ValueError) as e:
        p.exit(2, f"python -m datamodules.pack: error: {e}\n")
    return 0
