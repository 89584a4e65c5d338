"""Options shared by the training and evaluation commands, and their translation."""
import os
import sys

from tinyface.backend import set_backend
from tinyface.cli import CLIError
from tinyface.cli.fields import add_dataclass_options, from_args
from tinyface.cuda import CudaUnavailableError
from tinyface.data import DataError, load_split
from tinyface.train import CHECKPOINT_FILE, TrainConfig
from tinyface.train.config import STREAM_MAX_SHIFT
from tinyface.train.resume import checkpoint_epoch

DATA_CHOICES = ["synthetic", "orl", "lfw", "folder"]

# the TrainConfig fields that are the training commands' options, in --help order (each
# field's flag, default, type, choices and help are its own: train.config)
TRAIN_OPTIONS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule",
                 "warmup_epochs", "augment", "max_shift")


def add_data_options(p):
    """The data options (a group titled "data"); returns the group, for a command's own."""
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATA_CHOICES, default="synthetic",
                   help="dataset: built-in synthetic faces (no files), AT&T/ORL, LFW "
                        "(LFW-158 for identification) or a folder of identity sub-folders")
    g.add_argument("--data-root", metavar="PATH",
                   help="dataset location; orl/lfw default to ../shared/data or $TINYFACE_DATA")
    g.add_argument("--hr-size", type=int, default=64, help="HR face side in pixels (teacher input)")
    g.add_argument("--lr-size", type=int, default=16, choices=[8, 12, 16, 24, 32],
                   help="LR face side in pixels (student input)")
    g.add_argument("--train-fraction", type=float, default=0.7,
                   help="fraction of each identity's images used for training")
    g.add_argument("--min-images", type=int,
                   help="keep identities with at least this many images "
                        "(default: 10 on lfw, i.e. LFW-158; 2 elsewhere)")
    g.add_argument("--identities", type=int, default=100, help="synthetic: number of identities")
    g.add_argument("--images-per-identity", type=int, default=20, help="synthetic: images per identity")
    g.add_argument("--cache", metavar="DIR", help="cache of decoded images (default ~/.cache/tinyface)")
    return g


def add_train_options(p, epochs, batch_size, stream, lr=None):
    """The training options (a group titled "training": ``TRAIN_OPTIONS``, read back by
    ``config_from_args``) of a run of ``stream`` (teacher | student: its default shifts,
    ``STREAM_MAX_SHIFT``), with the command's recipe of ``epochs``, ``batch_size`` and
    ``lr`` (None: the optimizer's default); and ``--resume``."""
    g = p.add_argument_group("training")
    add_dataclass_options(g, TrainConfig, TRAIN_OPTIONS, defaults={
        "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "max_shift": STREAM_MAX_SHIFT[stream]})
    g.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (same settings) after an interruption")


def add_common(p, out_default):
    """``--out`` (held by the run: ``tinyface.runlock``) and ``--seed``."""
    p.add_argument("--out", metavar="DIR", default=out_default,
                   help="folder for models, logs, plots and metrics.json")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the split, the initial weights, shuffling and augmentation")
    p.set_defaults(out_folder=True, interrupted=interrupted_note)


def interrupted_note(args):
    """What Ctrl-C left in ``--out``: every file there is whole (written atomically)."""
    return f"every file in {args.out} is complete (written atomically); run the command again"


def interrupted_training(args):
    """What Ctrl-C left of a training run, and how to continue it."""
    path = os.path.join(args.out, CHECKPOINT_FILE)
    epoch = checkpoint_epoch(path)
    if epoch is None:
        return f"no epoch was finished, so there is nothing to resume in {args.out}"
    return (f"{path} (epoch {epoch} of {args.epochs}) is intact; run the same command "
            f"with --resume to continue from it")


def add_device_option(p):
    """``--device cpu|cuda``; ``main`` selects the tier before the command runs."""
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the layers run: 'cpu' (Numba kernels) or 'cuda' (numba.cuda "
                        "kernels on an NVIDIA GPU; weights, activations, gradients and "
                        "optimizer state stay on the GPU)")
    p.set_defaults(select_device=True)


def use_device(device):
    """Select the tier for ``--device``: ``set_backend("cuda")`` or the Numba CPU kernels.
    Without a GPU: a ``CLIError`` of one line saying why and how to use the CPU."""
    try:
        set_backend("cuda" if device == "cuda" else "numba")
    except CudaUnavailableError as exc:
        raise CLIError(str(exc)) from None


def split_from_args(args, log=None):
    """``load_split`` with the command-line options; data errors become one line."""
    synthetic = {"n_identities": args.identities, "images_per_identity": args.images_per_identity}
    try:
        split = load_split(args.data, data_root=args.data_root, hr_size=args.hr_size,
                           lr_size=args.lr_size, seed=args.seed,
                           train_fraction=args.train_fraction, min_images=args.min_images,
                           cache_dir=args.cache, synthetic=synthetic,
                           validation=getattr(args, "validation", 0.0))
    except (DataError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    if log:
        log(split.describe())
    return split


def config_from_args(args):
    """The ``TrainConfig`` of ``add_train_options``' options and ``--seed`` (validated:
    ``CLIError`` of one line on a bad setting)."""
    return from_args(TrainConfig, args, TRAIN_OPTIONS, seed=args.seed)


def log(msg):
    print(msg, flush=True)


def tee_log(out_dir, name="log.txt"):
    """A ``log`` that prints and also appends each line to ``OUT/log.txt``."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)

    def write(msg):
        print(msg, flush=True)
        with open(path, "a") as f:
            f.write(f"{msg}\n")
    return write


def warn(msg):
    print(msg, file=sys.stderr, flush=True)
