"""``ablation``: teacher, students from scratch, and the distillation variants."""
from pathlib import Path

from tinyface.cli import CLIError
from tinyface.cli.fields import add_dataclass_options, from_args
from tinyface.cli.options import (
    add_common,
    add_data_options,
    add_device_option,
    log,
    split_from_args,
)
from tinyface.data import DataError
from tinyface.distill.frozen_teacher import check_teacher_options, pretrained_name
from tinyface.experiments.ablation import run_ablation
from tinyface.experiments.settings import AblationSettings
from tinyface.helpformat import HelpFormatter
from tinyface.train import TrainingDiverged

# the AblationSettings fields that are options, by --help group, in --help order (each
# field's flag, default, type, choices and help are its own: experiments.settings)
OPTION_GROUPS = {
    "teacher": ("pretrained_hr_size", "head_penalties", "teacher_tune_blocks",
                "teacher_tune_inputs", "teacher_tune_rate", "teacher_tune_epochs",
                "teacher_arch", "teacher_epochs"),
    "students": ("seeds", "scratch_epochs", "finetune_epochs", "batch_size", "scratch_lr",
                 "scratch_weight_decay", "finetune_lr", "finetune_weight_decay", "augment",
                 "max_shift"),
    "distillation": ("variants", "method_weights", "mu", "mu_schedule", "feature_norm",
                     "teacher_layer", "adapter_init", "T", "kd_weight", "ratio", "ratios",
                     "alpha", "k", "informativeness", "label_free", "label_free_epochs", "start",
                     "label_free_pool", "per_identity"),
}
SETTINGS_OPTIONS = tuple(name for names in OPTION_GROUPS.values() for name in names)

# --quick: settings of a smoke run (each applies only where the option was left at its default)
QUICK = {"identities": 8, "images_per_identity": 8, "hr_size": 32, "lr_size": 8,
         "teacher_arch": "teacher-lite", "teacher_epochs": 3, "seeds": 2, "scratch_epochs": 3,
         "finetune_epochs": 2, "batch_size": 16, "ratios": "0.5,1",
         "head_penalties": "1e-5,1e-4,1e-3"}
QUICK_VERIFICATION = {"n_identities": 20, "images_per_identity": 4, "pairs_per_fold": 6}


def register(sub):
    p = sub.add_parser(
        "ablation",
        help="the distillation ablation: teacher, scratch students, distillation variants",
        formatter_class=HelpFormatter,
        description="Trains (or loads) the teacher once, trains a student from scratch per "
                    "seed, extracts the teacher's feature bank, selects faces, fine-tunes "
                    "each variant (none: CE only; kd: Hinton soft targets; full: feature "
                    "regression on every face; random: on a random subset of the selective "
                    "size; selective: on the selected faces; by default these five, and with "
                    "--variants the methods from the field and their selective-m versions) "
                    "from each scratch student, and "
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
    add_dataclass_options(t, AblationSettings, OPTION_GROUPS["teacher"])
    for title in ("students", "distillation"):
        add_dataclass_options(p.add_argument_group(title), AblationSettings, OPTION_GROUPS[title])
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


def settings_from_args(args):
    """The ``AblationSettings`` of the parsed options (``CLIError`` on a bad one)."""
    verification = dict(QUICK_VERIFICATION) if args.quick and args.data == "synthetic" else {}
    return from_args(AblationSettings, args, SETTINGS_OPTIONS, first_seed=args.seed,
                     verification=verification)


def run(args):
    if args.quick:
        _apply_quick(args)
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
