"""``demo``: the whole pipeline on built-in synthetic faces, no files needed."""
import time
from pathlib import Path

from tinyface.atomic import write_json
from tinyface.cli.evaluate import format_identification
from tinyface.cli.options import add_device_option, interrupted_note, log
from tinyface.data import load_split
from tinyface.eval import evaluate_identification, plots
from tinyface.experiments import train_stream
from tinyface.helpformat import HelpFormatter
from tinyface.train import TrainConfig
from tinyface.train.config import STREAM_MAX_SHIFT


def register(sub):
    p = sub.add_parser(
        "demo", help="the whole pipeline on synthetic faces (no files, a few minutes)",
        formatter_class=HelpFormatter,
        description="Generates synthetic faces, trains the teacher on HR faces and the "
                    "student on LR faces, evaluates identification (teacher at HR, teacher "
                    "on LR faces upsampled back, student at LR), prints a results table and "
                    "writes plots. Needs no data files.")
    p.add_argument("--identities", type=int, default=50, help="synthetic identities")
    p.add_argument("--images-per-identity", type=int, default=24, help="synthetic images per identity")
    p.add_argument("--lr-size", type=int, default=16, choices=[8, 12, 16, 24, 32], help="LR face side")
    p.add_argument("--teacher-epochs", type=int, default=30, help="teacher training epochs")
    p.add_argument("--student-epochs", type=int, default=30, help="student training epochs")
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="folder for models, plots and results")
    p.add_argument("--seed", type=int, default=0, help="seeds faces' split, weights, shuffling and augmentation")
    add_device_option(p)
    p.set_defaults(func=run, out_folder=True, interrupted=interrupted_note)


def configs_from_args(args):
    """The teacher's and the student's ``TrainConfig``: TrainConfig's defaults with the
    demo's epochs, batch size, seed and each stream's shifts (``STREAM_MAX_SHIFT``)."""
    teacher = TrainConfig(epochs=args.teacher_epochs, batch_size=64,
                          max_shift=STREAM_MAX_SHIFT["teacher"], seed=args.seed)
    student = TrainConfig(epochs=args.student_epochs, batch_size=64,
                          max_shift=STREAM_MAX_SHIFT["student"], seed=args.seed)
    return teacher, student


def run(args):
    t0 = time.perf_counter()
    out = Path(args.out)
    teacher_cfg, student_cfg = configs_from_args(args)
    log("== 1/4 synthetic faces")
    split = load_split("synthetic", hr_size=64, lr_size=args.lr_size, seed=args.seed,
                       synthetic={"n_identities": args.identities,
                                  "images_per_identity": args.images_per_identity})
    log(split.describe())
    log("== 2/4 teacher on HR faces (teacher-lite: the VGG teacher with a stride-2 first conv)")
    teacher = train_stream(split, "teacher", teacher_cfg, out / "teacher", arch="teacher-lite",
                           log=log)
    log("== 3/4 student on LR faces")
    student = train_stream(split, "student", student_cfg, out / "student", log=log)
    log("== 4/4 evaluation")
    results = {
        "teacher at HR": evaluate_identification(teacher["model"], split, "teacher"),
        "teacher on LR, upsampled": evaluate_identification(teacher["model"], split, "teacher",
                                                            upsampled=True),
        "student at LR": evaluate_identification(student["model"], split, "student"),
    }
    table = format_identification(results)
    files = [plots.plot_cmc({k: (v["cmc"]["ranks"], v["cmc"]["rates"]) for k, v in results.items()},
                            out / "cmc.png", title=f"CMC, {split.meta.get('data', '?')}, {split.num_classes} identities"),
             plots.plot_bars({k: 100 * v["top1"] for k, v in results.items()}, out / "top1.png",
                             ylabel="top-1 identification (%)", title="synthetic faces"),
             out / "teacher" / "curves.png", out / "student" / "curves.png"]
    seconds = time.perf_counter() - t0
    summary = {"identification": results, "seconds": seconds, "split": split.meta,
               "teacher_train_seconds": teacher["metrics"]["train_seconds"],
               "student_train_seconds": student["metrics"]["train_seconds"]}
    write_json(out / "metrics.json", summary)
    (out / "results.md").write_text(table + "\n")
    log("")
    log(table)
    log("")
    log(f"teacher trained in {summary['teacher_train_seconds']:.0f} s, student in "
        f"{summary['student_train_seconds']:.0f} s; whole demo {seconds:.0f} s")
    log("wrote " + ", ".join(str(f) for f in files + [out / "results.md", out / "metrics.json"]))
    return 0
