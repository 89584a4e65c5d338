"""``evaluate``: identification (top-1, top-5, CMC) and optional LFW verification."""
from pathlib import Path

from tinyface.atomic import write_json
from tinyface.cli import CLIError
from tinyface.cli.options import (
    add_common,
    add_data_options,
    add_device_option,
    add_train_options,
    config_from_args,
    log,
    split_from_args,
)
from tinyface.data import DataError, find_pairs_file, load_dataset, load_pairs
from tinyface.eval import evaluate_identification, plots
from tinyface.experiments.fold_verification import verification_experiment
from tinyface.experiments.trained import load_trained
from tinyface.helpformat import HelpFormatter
from tinyface.train.config import STREAM_MAX_SHIFT


def register(sub):
    p = sub.add_parser(
        "evaluate", help="identification accuracy and CMC of trained streams; LFW verification",
        formatter_class=HelpFormatter,
        description="Closed-set identification on the test faces of the split the streams "
                    "were trained on (same --data, --seed and sizes): teacher at HR, teacher "
                    "on LR faces upsampled back, student at LR; top-1, top-5 and a CMC plot. "
                    "With --verification (LFW only), the identity-disjoint 10-fold protocol: "
                    "for each test fold a student is trained on the other folds' identities "
                    "(--epochs etc. apply to it), then pairs are scored by cosine similarity.")
    p.add_argument("--teacher", metavar="PATH", help="teacher run folder or model.npz")
    p.add_argument("--student", metavar="PATH", help="student run folder or model.npz")
    add_data_options(p)
    v = p.add_argument_group("verification (LFW)")
    v.add_argument("--verification", action="store_true", help="run LFW 10-fold verification at --lr-size")
    v.add_argument("--folds", type=int, default=10, help="evaluate only the first K folds (one training each)")
    v.add_argument("--cross-resolution", action="store_true",
                   help="also train a teacher-lite per fold and score HR gallery faces against LR probes")
    v.add_argument("--teacher-epochs", type=int, default=15, help="epochs of each fold's teacher")
    add_train_options(p, epochs=20, batch_size=128, stream="student")   # the per-fold students
    add_common(p, out_default="runs/evaluate")
    add_device_option(p)
    p.set_defaults(func=run)


def _load(path, split, stream):
    """The trained ``stream`` at ``path``, checked against ``split``
    (``load_trained``: its stream, identities, sizes and recorded split)."""
    try:
        return load_trained(path, split, stream).model
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(f"cannot evaluate the {stream} at {path}: "
                       f"{str(exc).splitlines()[0]}") from None


def run(args):
    out = Path(args.out)
    results = {}
    if args.teacher or args.student:
        split = split_from_args(args, log=log)
        rows = []
        if args.teacher:
            teacher = _load(args.teacher, split, "teacher")
            rows += [("teacher at HR", teacher, "teacher", False),
                     ("teacher on LR, upsampled", teacher, "teacher", True)]
        if args.student:
            rows.append(("student at LR", _load(args.student, split, "student"), "student", False))
        for name, model, stream, up in rows:
            results[name] = evaluate_identification(model, split, stream, upsampled=up)
        log(format_identification(results))
        plots.plot_cmc({k: (v["cmc"]["ranks"], v["cmc"]["rates"]) for k, v in results.items()},
                       out / "cmc.png", title=f"CMC, {split.meta.get('data', '?')}, {split.num_classes} identities")
        log(f"wrote {out / 'cmc.png'}")
    if args.verification:
        results["verification"] = _verification(args, out)
    if not results:
        raise CLIError("nothing to evaluate: give --teacher and/or --student, or --verification")
    write_json(out / "metrics.json", results)
    log(f"wrote {out / 'metrics.json'}")
    return 0


def _verification(args, out):
    if args.data != "lfw":
        raise CLIError("--verification needs --data lfw (it uses LFW's pairs.txt folds)")
    try:
        ds = load_dataset("lfw", root=args.data_root, hr_size=args.hr_size, cache_dir=args.cache)
        pairs_file = find_pairs_file(args.data_root)
        if pairs_file is None:
            raise CLIError("no lfw_pairs.txt or pairs.txt next to the LFW data; put LFW's "
                           "pairs.txt beside it or give --data-root")
        pairs = load_pairs(pairs_file)
    except (DataError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    cfg, tcfg = verification_configs(args)
    try:
        res = verification_experiment(ds, pairs, cfg, lr_size=args.lr_size, folds=args.folds,
                                      cross_resolution=args.cross_resolution,
                                      teacher_config=tcfg, log=log)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    curves = {}
    for key, name in (("student", f"student {args.lr_size}px"), ("cross", "teacher HR vs LR")):
        if key in res:
            r = res[key]
            log(f"verification, {name}: {100 * r['accuracy']:.2f} +- {100 * r['std']:.2f}% over "
                f"{res['folds']} fold(s), AUC {r['auc']:.3f}, TAR@FAR=1e-2 {100 * r['tar_at_far_1e-2']:.1f}%")
            curves[name] = (r["roc"]["far"], r["roc"]["tar"])
    plots.plot_roc(curves, out / "roc.png", title="LFW verification, identity-disjoint folds")
    log(f"wrote {out / 'roc.png'}")
    return res


def verification_configs(args):
    """The ``TrainConfig`` of each fold's student (the training options) and of its
    teacher (the same, with ``--teacher-epochs``, batch 64 and HR faces' shifts)."""
    cfg = config_from_args(args)
    tcfg = cfg.replace(epochs=args.teacher_epochs, batch_size=64,    # HR faces
                       max_shift=STREAM_MAX_SHIFT["teacher"])
    return cfg, tcfg


def format_identification(results):
    lines = ["| model | faces | top-1 | top-5 |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['input_size']}px | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% |")
    return "\n".join(lines)
