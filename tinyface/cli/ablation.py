"""``ablation``: teacher, students from scratch, and the five distillation variants."""
from pathlib import Path

from tinyface.cli import CLIError
from tinyface.cli.options import (
    add_common,
    add_data_options,
    add_device_option,
    log,
    split_from_args,
)
from tinyface.helpformat import HelpFormatter

# --quick: settings of a smoke run (each applies only where the option was left at its default)
QUICK = {"identities": 8, "images_per_identity": 8, "hr_size": 32, "lr_size": 8,
         "teacher_arch": "teacher-lite", "teacher_epochs": 3, "seeds": 2, "scratch_epochs": 3,
         "finetune_epochs": 2, "batch_size": 16, "ratios": "0.5,1",
         "head_penalties": "1e-5,1e-4,1e-3"}
QUICK_VERIFICATION = {"n_identities": 20, "images_per_identity": 4, "pairs_per_fold": 6}


def register(sub):
    p = sub.add_parser(
        "ablation", help="the distillation ablation: teacher, scratch students, 5 variants",
        formatter_class=HelpFormatter,
        description="Trains (or loads) the teacher once, trains a student from scratch per "
                    "seed, extracts the teacher's feature bank, selects faces, fine-tunes "
                    "each variant (none: CE only; kd: Hinton soft targets; full: feature "
                    "regression on every face; random: on a random subset of the selective "
                    "size; selective: on the selected faces) from each scratch student, and "
                    "writes OUT/results.md, results.json, ablation.png, verification.png, "
                    "selection_montage.png, graph.png and ratio_curve.png. Every phase is "
                    "cached under OUT: a re-run redoes only what is missing.")
    add_data_options(p).add_argument(
        "--validation", type=float, default=0.0, metavar="F",
        help="a validation screen: F of each identity's training faces become the faces "
             "measured, the students train on the rest, the test faces stay unused (and "
             "verification, whose pairs are test faces, is not measured); 0: the test faces")
    t = p.add_argument_group("teacher")
    t.add_argument("--teacher", metavar="PATH",
                   help="teacher run folder or its model.npz, which must exist unless "
                        "--train-teacher (default: OUT/teacher, trained there when missing); "
                        "or dlib-resnet: dlib's pretrained ResNet, frozen, with a softmax "
                        "head fitted on the training identities")
    t.add_argument("--train-teacher", action="store_true",
                   help="train a new teacher at --teacher PATH when nothing is there yet "
                        "(about 50 minutes on LFW with 2 cores)")
    t.add_argument("--teacher-weights", metavar="PATH",
                   help="with --teacher dlib-resnet: the folder (or a file) of its weights "
                        "(default: $TINYFACE_DATA/dlib_resnet, ../shared/data/dlib_resnet, "
                        "then the download script's cache)")
    t.add_argument("--pretrained-hr-size", type=int, default=90,
                   help="with --teacher dlib-resnet: side at which its HR faces are decoded "
                        "from the image files (90: LFW3D's own size), then resized to 150; 0: "
                        "the --hr-size faces")
    t.add_argument("--head-penalties", metavar="P,P,...",
                   help="with --teacher dlib-resnet: L2 penalties tried for its softmax head, "
                        "the one of lowest cross-entropy on a validation split of the training "
                        "faces is kept (default: tinyface.distill.softmax_head.DEFAULT_PENALTIES, "
                        "decades around what LFW-158 takes)")
    t.add_argument("--teacher-tune-blocks", type=int, default=0, metavar="B",
                   help="with --teacher dlib-resnet: tune its last B residual blocks and its "
                        "embedding layer on the training faces first (0: frozen)")
    t.add_argument("--teacher-tune-inputs", choices=["hr", "hr+lr"], default="hr",
                   help="with --teacher-tune-blocks: the training faces at HR, or also at "
                        "LR, upsampled (a teacher tuned towards LR inputs)")
    t.add_argument("--teacher-tune-rate", type=float, default=3e-4,
                   help="with --teacher-tune-blocks: SGD learning rate of the tuning")
    t.add_argument("--teacher-tune-epochs", type=int, default=10,
                   help="with --teacher-tune-blocks: epochs of the tuning")
    t.add_argument("--teacher-arch", choices=["teacher", "teacher-lite"], default="teacher",
                   help="architecture of a teacher trained here")
    t.add_argument("--teacher-epochs", type=int, default=40, help="epochs of a teacher trained here")
    s = p.add_argument_group("students")
    s.add_argument("--seeds", type=int, default=3, help="students per row (seeds SEED, SEED+1, ...)")
    s.add_argument("--scratch-epochs", type=int, default=30, help="epochs from scratch (LR only)")
    s.add_argument("--finetune-epochs", type=int, default=30, help="epochs of fine-tuning")
    s.add_argument("--batch-size", type=int, default=64, help="faces per step")
    s.add_argument("--scratch-lr", type=float, default=0.03,
                   help="SGD learning rate from scratch (train-student's default is 0.05)")
    s.add_argument("--scratch-weight-decay", type=float, default=3e-3,
                   help="weight decay from scratch: stronger than train-student's 5e-4, which "
                        "on LFW-158 lifts the scratch student by about 2 points of top-1")
    s.add_argument("--finetune-lr", type=float, default=0.01, help="SGD learning rate of fine-tuning")
    s.add_argument("--finetune-weight-decay", type=float, default=3e-3,
                   help="weight decay of fine-tuning")
    s.add_argument("--no-augment", action="store_true", help="no flips, shifts or jitter")
    s.add_argument("--max-shift", type=float, default=0.0,
                   help="students' random shifts as a fraction of the side (0.0625: up to 1 px "
                        "at 16 px); none by default, because at 16 px a sub-pixel shift blurs "
                        "the face")
    d = p.add_argument_group("distillation")
    d.add_argument("--variants", default="none,kd,full,random,selective",
                   help="comma-separated variants to run")
    d.add_argument("--mu", type=float, default=3.0, help="weight of the feature regression")
    d.add_argument("--mu-schedule", choices=["constant", "linear", "cosine"], default="constant",
                   help="mu over the fine-tuning steps (linear/cosine: decay to 0)")
    d.add_argument("--feature-norm", choices=["l2", "none"], default="l2",
                   help="L2-normalise the adapted student and teacher features before regressing")
    d.add_argument("--teacher-layer", choices=["embedding", "pooled"], default="embedding",
                   help="regression targets: the teacher's embedding, or the pooled output of "
                        "its last convolution stage (the embedding layer's input)")
    d.add_argument("--adapter-init", choices=["lstsq", "random"], default="lstsq",
                   help="adapter start: least squares on the student's embeddings, or random")
    d.add_argument("--T", type=float, default=4.0, help="KD temperature")
    d.add_argument("--kd-weight", type=float, default=1.0, help="weight of the KD term")
    d.add_argument("--ratio", type=float, default=0.5, help="selection ratio, in (0, 1]")
    d.add_argument("--ratios", default="0.25,0.5,0.75,1",
                   help="ratios of the accuracy-vs-ratio curve (first seed; '' for none)")
    d.add_argument("--alpha", type=float, default=1.0, help="selector: weight of redundancy")
    d.add_argument("--k", type=int, default=10, help="selector: neighbours per face in the graph")
    d.add_argument("--informativeness", choices=["teacher", "student-gap"], default="teacher",
                   help="selector's node scores: the teacher's confidence, margin and centre "
                        "closeness; or student-gap, p_teacher(y) * (1 - p_student(y)) with each "
                        "seed's scratch student (a selection per seed)")
    d.add_argument("--label-free", default="full", metavar="V,V,...",
                   help="regression variants run a second time with label-free regression on "
                        "the unlabelled faces of the dataset (outside the labelled and test "
                        "faces); '' for none")
    d.add_argument("--label-free-epochs", type=int, default=0,
                   help="fine-tuning epochs of the label-free rows (0: --finetune-epochs)")
    d.add_argument("--start", choices=["scratch", "random"], default="scratch",
                   help="scratch: fine-tune each seed's scratch student; random: distil from "
                        "the start, a fresh student trained scratch + fine-tuning epochs with "
                        "the scratch recipe")
    d.add_argument("--label-free-pool", choices=["disjoint", "all"], default="disjoint",
                   help="disjoint: also leave out every face of the people in the "
                        "verification pairs, so that row stays honest; all: keep them")
    d.add_argument("--global-selection", action="store_true",
                   help="select RATIO of all faces (default: RATIO of each identity's faces)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: tiny synthetic faces (32px HR, 8px LR), teacher-lite, "
                        "few epochs, 2 seeds (only options left at their defaults change)")
    add_common(p, out_default="runs/ablation")
    add_device_option(p)
    p.set_defaults(func=run, _parser=p, interrupted=_interrupted)


def _interrupted(args):
    return (f"every finished phase is cached in {args.out}, and a training run stopped midway "
            f"keeps its last epoch's checkpoint: run the same command again to continue")


def _apply_quick(args):
    p = args._parser
    for dest, value in QUICK.items():
        if getattr(args, dest) == p.get_default(dest):
            setattr(args, dest, value)


def _ratios(text):
    from tinyface.distill import check_ratio
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(check_ratio(float(part)))
        except ValueError as exc:
            raise CLIError(f"--ratios: {exc}" if "ratio" in str(exc)
                           else f"--ratios: {part!r} is not a number") from None
    return out


def _numbers(text, option):
    try:
        return [float(part) for part in (text or "").split(",") if part.strip()]
    except ValueError:
        raise CLIError(f"{option}: {text!r} is not a list of numbers") from None


def settings_from_args(args):
    from tinyface.distill import VARIANTS, check_ratio
    from tinyface.experiments.ablation import AblationSettings
    try:
        check_ratio(args.ratio)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise CLIError(f"--variants: unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}"
                       if bad else "--variants: give at least one variant")
    verification = {}
    if args.quick and args.data == "synthetic":
        verification = dict(QUICK_VERIFICATION)
    try:
        return AblationSettings(
            seeds=args.seeds, first_seed=args.seed, scratch_epochs=args.scratch_epochs,
            finetune_epochs=args.finetune_epochs, teacher_epochs=args.teacher_epochs,
            teacher_arch=args.teacher_arch, batch_size=args.batch_size,
            scratch_lr=args.scratch_lr, scratch_weight_decay=args.scratch_weight_decay,
            finetune_lr=args.finetune_lr, finetune_weight_decay=args.finetune_weight_decay,
            augment=not args.no_augment, max_shift=args.max_shift, variants=variants,
            mu=args.mu, T=args.T,
            kd_weight=args.kd_weight, ratio=args.ratio, ratios=_ratios(args.ratios),
            alpha=args.alpha, k=args.k, per_identity=not args.global_selection,
            informativeness=args.informativeness,
            feature_norm=args.feature_norm, adapter_init=args.adapter_init,
            teacher_layer=args.teacher_layer,
            mu_schedule=args.mu_schedule, verification=verification,
            pretrained_hr_size=args.pretrained_hr_size,
            label_free=tuple(v.strip() for v in args.label_free.split(",") if v.strip()),
            label_free_pool=args.label_free_pool, label_free_epochs=args.label_free_epochs,
            start=args.start, teacher_tune_blocks=args.teacher_tune_blocks,
            teacher_tune_inputs=args.teacher_tune_inputs,
            teacher_tune_rate=args.teacher_tune_rate, teacher_tune_epochs=args.teacher_tune_epochs,
            **({} if args.head_penalties is None else
               {"head_penalties": _numbers(args.head_penalties, "--head-penalties")}))
    except ValueError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None


def run(args):
    from tinyface.data import DataError
    from tinyface.experiments.ablation import run_ablation
    from tinyface.train import TrainingDiverged
    if args.quick:
        _apply_quick(args)
    from tinyface.distill.frozen_teacher import check_teacher_options, pretrained_name
    settings = settings_from_args(args)          # bad settings fail before any work
    try:
        check_teacher_options(args.teacher, args.teacher_weights, settings)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.teacher and pretrained_name(args.teacher) is None and not args.train_teacher \
            and not Path(args.teacher).exists():
        raise CLIError(f"--teacher {args.teacher}: no such run folder or file; give "
                       f"--train-teacher to train a new teacher there")
    split = split_from_args(args, log=log)
    try:
        run_ablation(split, settings, args.out, teacher_path=args.teacher, data=args.data,
                     data_root=args.data_root, cache_dir=args.cache, log=log,
                     teacher_weights=args.teacher_weights)
    except (DataError, FileNotFoundError, ValueError, TrainingDiverged) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    return 0
