"""Register ml4l's block types and save the default lake block (``ml4l-lake-storage/lake``)."""

from __future__ import annotations

import argparse

from blocks.lake import LakeStorage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", default="./lake", help="lake root to save in the block [./lake]")
    parser.add_argument("--name", default="lake", help="block document name [lake]")
    args = parser.parse_args()
    LakeStorage.register_type_and_schema()
    LakeStorage(root=args.lake).save(args.name, overwrite=True)
    print(f"saved ml4l-lake-storage/{args.name} -> {args.lake}")


if __name__ == "__main__":
    main()
