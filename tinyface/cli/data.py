"""``python -m tinyface data {info,show,prepare}``: inspect, picture and cache face data."""
from __future__ import annotations

import argparse
import sys
import time
import warnings

from tinyface.cli import CLIError
from tinyface.data import (
    DATASETS,
    DataError,
    find_pairs_file,
    format_summary,
    load_dataset,
    load_pairs,
    montage,
    pick_faces,
    resolve_pairs,
)
from tinyface.data.prepare import prepare
from tinyface.helpformat import HelpFormatter


def _sizes(text: str):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def _common(p):
    p.add_argument("--data", choices=DATASETS, default="synthetic", help="which dataset")
    p.add_argument("--data-root", default=None,
                   help="dataset folder or archive; if not given, orl/lfw look in "
                        "$TINYFACE_DATA or <repo>/../shared/data (required for folder)")
    p.add_argument("--hr-size", type=int, default=64, help="HR side in pixels")
    p.add_argument("--crop", type=float, default=None,
                   help="centre-crop ratio for real images; if not given, the loader's own "
                        "(orl, folder: 1.0; lfw: 1.0 up to 128 px images, else 0.5)")
    p.add_argument("--cache", default=None,
                   help="cache folder for decoded arrays; if not given, $TINYFACE_CACHE or "
                        "~/.cache/tinyface")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--identities", "--n-identities", dest="n_identities", type=int, default=100,
                   metavar="N", help="synthetic: number of identities")
    p.add_argument("--images-per-identity", type=int, default=20,
                   help="synthetic: images per identity")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _load(args):
    kw = {}
    if args.data == "synthetic":
        kw = dict(n_identities=args.n_identities, images_per_identity=args.images_per_identity)
    cache = False if args.no_cache else args.cache
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = load_dataset(args.data, root=args.data_root, hr_size=args.hr_size,
                              seed=args.seed, cache_dir=cache, crop=args.crop, progress=True,
                              **kw)
        except (DataError, ValueError) as exc:
            raise CLIError(str(exc)) from None
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return ds, time.perf_counter() - t0


def cmd_info(args):
    ds, dt = _load(args)
    print(format_summary(ds.summary()))
    print(f"loaded in {dt:.2f} s ({'from cache' if ds.meta.get('from_cache') else 'decoded'})")
    if args.data == "lfw":
        pairs = args.pairs or find_pairs_file(args.data_root)
        if pairs is None:
            print("pairs:       no pairs file found (give --pairs PATH)")
            return 0
        try:
            folds = load_pairs(pairs)
            a, b, same = resolve_pairs(folds, ds)
        except DataError as exc:
            raise CLIError(str(exc)) from None
        print(f"pairs:       {len(a)} in {len(folds)} folds ({int(same.sum())} matched, "
              f"{int((~same).sum())} mismatched), every named image present ({pairs})")
    return 0


def cmd_show(args):
    ds, _ = _load(args)
    rows = pick_faces(ds, args.n_faces, args.seed)
    out = montage(ds.images[rows], args.out, lr_sizes=args.lr_sizes,
                  names=[ds.names[ds.labels[r]] for r in rows], method=args.method,
                  title=f"{args.data}: HR {ds.hr_size}px and LR ({args.method})")
    print(f"wrote {out}")
    return 0


def cmd_prepare(args):
    kw = {}
    if args.data == "synthetic":
        kw = dict(n_identities=args.n_identities, images_per_identity=args.images_per_identity)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _, _, text = prepare(args.data, args.data_root, args.hr_size, args.lr_sizes,
                                 False if args.no_cache else args.cache, method=args.method,
                                 seed=args.seed, crop=args.crop, **kw)
        except (DataError, ValueError) as exc:
            raise CLIError(str(exc)) from None
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(text)
    return 0


def register(sub):
    fmt = HelpFormatter
    p = sub.add_parser("data", help="inspect, picture and cache face datasets",
                       formatter_class=fmt)
    ds = p.add_subparsers(dest="data_command", metavar="ACTION")
    info = ds.add_parser("info", help="print counts of a dataset", formatter_class=fmt)
    _common(info)
    info.add_argument("--pairs", default=None,
                      help="lfw: pairs.txt to check; if not given, lfw_pairs.txt or pairs.txt "
                           "next to the data")
    info.set_defaults(func=cmd_info)
    show = ds.add_parser("show", help="PNG montage of faces at HR and every LR size",
                         formatter_class=fmt)
    _common(show)
    show.add_argument("--out", default="data_montage.png", help="PNG file to write")
    show.add_argument("--n-faces", type=int, default=6, help="faces (rows) to show")
    show.add_argument("--lr-sizes", type=_sizes, default=(8, 12, 16, 24, 32),
                      help="LR sizes (columns), comma-separated")
    show.add_argument("--lr-size", dest="lr_sizes", type=_sizes, default=argparse.SUPPRESS,
                      metavar="N", help="a single LR size (same as --lr-sizes N)")
    show.add_argument("--method", choices=("area", "bicubic"), default="area",
                      help="downsampling method")
    show.set_defaults(func=cmd_show)
    prep = ds.add_parser("prepare", help="build the cached HR and LR arrays and summarise",
                         formatter_class=fmt)
    _common(prep)
    prep.add_argument("--lr-sizes", type=_sizes, default=(8, 12, 16, 24, 32),
                      help="LR sizes to build, comma-separated")
    prep.add_argument("--method", choices=("area", "bicubic"), default="area",
                      help="downsampling method")
    prep.set_defaults(func=cmd_prepare)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
