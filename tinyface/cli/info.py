"""``python -m tinyface info [MODEL]``: a model's spec, layers, shapes, size and FLOPs."""
import os

from tinyface import checkpoint
from tinyface.cli import CLIError
from tinyface.helpformat import HelpFormatter
from tinyface.models import (
    PRETRAINED,
    STUDENT_MAX_PARAMS,
    ZOO,
    FaceNet,
    build_model,
    format_spec,
    format_summary,
    parse_spec,
    spec_by_name,
    summary,
)


def register(sub):
    p = sub.add_parser(
        "info", help="print a model's layers, output shapes, parameters, bytes and FLOPs per face",
        description="Print a model's spec and a per-layer table: output shape per face, "
                    "parameters, bytes (float32) and forward FLOPs per face, with totals. "
                    "MODEL is a zoo name (student, teacher, teacher-lite, dlib-resnet), a checkpoint "
                    "written by tinyface.checkpoint, or a .json spec file.",
        formatter_class=HelpFormatter)
    p.add_argument("model", nargs="?", default="student", metavar="MODEL",
                   help="'student' (16x16, with its LFW-158 classifier), 'teacher' (64x64), "
                        "'teacher-lite', 'dlib-resnet' (150x150, the pretrained teacher's "
                        "layers), a checkpoint path (.npz) or a spec file (.json)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier size for a zoo name or a spec file (default: 158 for a "
                        "zoo name, the file's own for a spec file)")
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed for a zoo name or spec")
    p.set_defaults(func=run)


def _load(args):
    """The model named by ``args.model`` and a line saying where it came from."""
    if args.num_classes is not None and args.num_classes < 1:
        raise CLIError(f"--num-classes must be at least 1, got {args.num_classes}")
    name = args.model
    if name in ZOO:
        spec = spec_by_name(name, 158 if args.num_classes is None else args.num_classes)
        return build_model(spec, seed=args.seed), f"zoo model {name!r}, seed {args.seed}"
    if name.endswith(".json"):
        try:
            with open(name) as f:
                spec = parse_spec(f.read())
        except OSError as e:
            raise CLIError(f"cannot read spec file {name!r}: {e.strerror or e}") from None
        except ValueError as e:
            raise CLIError(f"spec file {name!r}: {e}") from None
        if args.num_classes is not None:
            spec["num_classes"] = args.num_classes
        return build_model(spec, seed=args.seed), f"spec file {name!r}, seed {args.seed}"
    if not os.path.exists(name) and not os.path.exists(name + ".npz"):
        if os.sep not in name and "." not in name:
            raise CLIError(f"unknown model {name!r}: not one of {', '.join(ZOO)}, "
                           f"and no file of that name")
        raise CLIError(f"no checkpoint file at {name!r}")
    if args.num_classes is not None:
        raise CLIError("--num-classes applies to a zoo name or a spec file, not a checkpoint")
    try:
        model, meta = checkpoint.load_model(name)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    return model, f"checkpoint {name!r}" + (f", metadata {meta}" if meta else "")


def run(args):
    model, source = _load(args)
    if not isinstance(model, FaceNet):
        raise CLIError(f"{args.model!r} holds a {type(model).__name__}, not a tinyface face "
                       f"model (FaceNet); info needs its input size")
    print(f"{model!r}  [{source}]")
    print(format_spec(model.spec))
    print()
    try:
        rows = summary(model)
    except ValueError as e:
        raise CLIError(f"cannot run {args.model!r}: {e}") from None
    print(format_summary(rows))
    n, flops = model.num_parameters(), sum(r["flops"] for r in rows)
    head = model.classifier.num_parameters()
    print(f"embedding trunk (features): {n - head:,} parameters; classifier "
          f"Linear({model.embedding_dim}, {model.num_classes}): {head:,}")
    if model.spec["name"] in PRETRAINED:
        print(f"pretrained weights: tinyface.models.load_pretrained({model.spec['name']!r}) "
              f"reads them (python data_scripts/download_teacher.py fetches them)")
    share = (f"{n / STUDENT_MAX_PARAMS:.1%} of it (within)" if n <= STUDENT_MAX_PARAMS
             else f"{n / STUDENT_MAX_PARAMS:.1f}x it (over)")
    print(f"student budget: 0.15 MB = 0.15 * 2**20 bytes = {STUDENT_MAX_PARAMS:,} float32 "
          f"parameters; this model is {share}")
    print(f"training napkin math: forward + backward ~ 3 x {flops / 1e6:.1f} MFLOP = "
          f"{3 * flops / 1e9:.3f} GFLOP per face; at 50-100 GFLOP/s (large conv layers; "
          f"small ones run slower) that is {50e9 / (3 * flops):,.0f}-{100e9 / (3 * flops):,.0f} "
          f"faces/s, an estimate, not a measurement")
    return 0
