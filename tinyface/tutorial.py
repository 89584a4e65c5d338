"""What every script in ``tutorials/`` shares: its options, its checks, its output.

A tutorial is a plain script that imports the installed package. It uses this module
for the parts that are the same in all of them, so that each script shows only its
own stage::

    from tinyface import tutorial
    args = tutorial.parse_args(4, __doc__)        # --quick, --seed, --out, --data-root, --cache
    t = tutorial.Tutorial(args)                   # prints the header, makes OUT
    t.check("relative error", 3e-9, below=1e-6)   # prints "... 3e-09 (should be < 1e-06)  ok"
    t.saved(path)                                 # prints "saved: PATH" (the test reads these)
    t.save_figure(fig, "curves.png")              # tight_layout, savefig, close, saved
    t.finish(summary=[...], exercises=[...])      # Summary and 3 Exercises; exit 1 if a check failed

The distillation tutorials (06-08) share their teacher: ``choose_teacher`` (dlib's
pretrained ResNet in the full mode on real faces, a teacher-lite with ``--quick`` or
synthetic faces, ours with ``--teacher PATH``), ``reuse_caches`` (copy an ablation
folder's teacher caches and finished runs, ``--ablation DIR``) and ``TeacherFeatures``
(the features and logits of a trained or a frozen teacher, one interface).

Modes: ``--quick`` uses small built-in synthetic faces (or ORL where a script says so)
and must finish in about a minute on 2 cores; the default ("full") uses real LFW when
``--data-root`` is given or the shared data folder exists, and synthetic faces otherwise.
"""
import argparse
import os
import shutil
import sys
import time

import matplotlib.pyplot as plt

from tinyface.data import default_data_root, load_split
from tinyface.distill import FrozenTeacher, extract_bank, source_faces
from tinyface.eval import embed_images, logits_of
from tinyface.experiments import load_stream
from tinyface.models import WeightsError, dlib_resnet_spec, find_weights_dir, teacher_lite_spec

SAVED_PREFIX = "saved: "

# the quick mode's synthetic faces of the stream tutorials (04, 05, 08): one setting, so
# that 05 and 08 can reuse the models 04 trained (a run folder fits one split only)
QUICK_FACES = {"n_identities": 20, "images_per_identity": 12, "family_size": 1}


def parse_args(number, doc, argv=None, extra=None):
    """The tutorial's command line: ``--quick``, ``--seed``, ``--out``, ``--data-root``,
    ``--cache``, plus whatever ``extra(parser)`` adds. ``doc`` (the script's docstring)
    is the ``--help`` text."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small synthetic data and short runs (about a minute on 2 cores); "
                        "what CI runs")
    p.add_argument("--seed", type=int, default=0, help="seeds data, weights and shuffling")
    p.add_argument("--out", metavar="DIR", default=os.path.join("tutorial_out", f"{number:02d}"),
                   help="folder for the plots and files this tutorial writes")
    p.add_argument("--data-root", metavar="PATH",
                   help="real face data (default: ../shared/data or $TINYFACE_DATA when present)")
    p.add_argument("--cache", metavar="DIR", help="cache of decoded images (default ~/.cache/tinyface)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    args.number = number
    return args


def real_data_root(args):
    """The real-data folder this run may use, or None: ``--data-root`` if given (it must
    exist), else the default data root if it holds LFW."""
    if args.data_root:
        if not os.path.isdir(args.data_root):
            raise SystemExit(f"--data-root {args.data_root}: no such folder")
        return args.data_root
    root = default_data_root()
    if root and any(os.path.exists(os.path.join(root, name)) for name in ("lfw3d.tgz", "lfw3d")):
        return root
    return None


def choose_data(args):
    """``(name, root)`` of the faces this run uses: synthetic with ``--quick``; in the full
    mode, LFW when real data is at hand, else synthetic (said in the output)."""
    if args.quick:
        return "synthetic", None
    root = real_data_root(args)
    if root is None:
        print("no real data found (give --data-root): the full mode uses synthetic faces")
        return "synthetic", None
    return "lfw", root


def load_faces(args, quick_faces=QUICK_FACES):
    """``(split, root)``: the HR/LR ``FaceSplit`` of this run (``choose_data``, ``--seed``,
    ``--cache``; ``quick_faces`` sets the synthetic faces of ``--quick``) and the real-data
    folder it came from (None for synthetic faces). ``split.meta["data"]`` names the data."""
    data, root = choose_data(args)
    split = load_split(data, data_root=root, seed=args.seed, cache_dir=args.cache,
                       synthetic=quick_faces if data == "synthetic" and args.quick else None)
    return split, root


class Tutorial:
    """The running tutorial: its output folder, its checks and the files it saved."""

    def __init__(self, args, title=None):
        self.args = args
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.failed = []
        self.files = []
        self.t0 = time.perf_counter()
        mode = "quick" if args.quick else "full"
        name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tutorial"
        print(f"== {title or name}  ({mode} mode, seed {args.seed}, output in {self.out}/)")

    def section(self, title):
        """Print a section heading."""
        print(f"\n-- {title}")

    def path(self, name):
        """``OUT/name``."""
        return os.path.join(self.out, name)

    def check(self, label, value, below=None, above=None, equals=None):
        """Print ``label: value (should be < below)`` and whether it holds; a failed
        check is remembered and makes the script exit 1 at ``finish``."""
        if below is not None:
            ok, want = value < below, f"should be < {below:.3g}"
        elif above is not None:
            ok, want = value > above, f"should be > {above:.3g}"
        elif equals is not None:
            ok, want = value == equals, f"should be {equals}"
        else:
            raise ValueError("check needs one of below=, above=, equals=")
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(f"  {label}: {shown} ({want})  {'ok' if ok else 'FAILED'}")
        if not ok:
            self.failed.append(label)
        return ok

    def saved(self, path):
        """Announce a file this tutorial wrote (the tutorial test checks each exists)."""
        self.files.append(path)
        print(f"{SAVED_PREFIX}{path}")
        return path

    def save_figure(self, fig, name, dpi=90):
        """Lay out, write ``OUT/name``, close and announce a matplotlib figure; its path."""
        path = self.path(name)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        return self.saved(path)

    def finish(self, summary, exercises):
        """Print the Summary and the Exercises, then exit 1 if any check failed."""
        print("\nSummary")
        for line in summary:
            print(f"  - {line}")
        print("\nExercises")
        for i, line in enumerate(exercises, 1):
            print(f"  {i}. {line}")
        took = time.perf_counter() - self.t0
        print(f"\n{len(self.files)} files in {self.out}/, {took:.1f} s")
        if self.failed:
            print(f"FAILED checks: {', '.join(self.failed)}")
            raise SystemExit(1)


# ------------------------------------------------------------ the teacher of 06, 07, 08
# the pretrained teacher of tutorials 04, 06, 07 and 08 in their full mode on real faces
PRETRAINED_TEACHER = "dlib-resnet"
# tutorial 07's ablation folder: tutorials 06 and 08 reuse its teacher caches by default
ABLATION_OUT = os.path.join("tutorial_out", "07", "ablation")
# what an ablation folder caches of a pretrained teacher (tinyface.distill.frozen_teacher):
# its descriptors per face set, its softmax head, its evaluation and the feature bank
TEACHER_CACHES = ("teacher-descriptors", "teacher-head.npz", "teacher_eval.json", "bank.npz")


def teacher_options(p, ablation_help):
    """``--teacher PATH`` and ``--ablation DIR``, the options of tutorials 06-08."""
    p.add_argument("--teacher", metavar="PATH",
                   help=f"the teacher: our trained teacher's run folder or model.npz (e.g. "
                        f"runs/lfw-teacher), or {PRETRAINED_TEACHER}; "
                        f"default: {PRETRAINED_TEACHER} on real faces, a teacher-lite trained "
                        f"here with --quick or on synthetic faces")
    p.add_argument("--ablation", metavar="DIR", help=ablation_help)


def choose_teacher(args, data):
    """The teacher a run distils from, printed with the reason: ``args.teacher`` when
    given; else ``"dlib-resnet"`` in the full mode on real faces when its weights are
    found; else None (train a teacher-lite: quick mode or synthetic faces, which the
    pretrained net sees as one person; or our own teacher when the weights are missing)."""
    if args.teacher:
        print(f"teacher: {args.teacher} (--teacher)")
        return args.teacher
    if args.quick or data == "synthetic":
        why = ("quick mode" if args.quick else
               "synthetic faces, which the pretrained net sees as one person")
        print(f"teacher: trained here ({why})")
        return None
    try:
        folder = find_weights_dir()
    except WeightsError as exc:
        print(f"teacher: no pretrained weights, so ours is trained here ({exc})")
        return None
    print(f"teacher: {PRETRAINED_TEACHER}, pretrained on people outside LFW and frozen "
          f"(weights in {folder})")
    return PRETRAINED_TEACHER


def teacher_width(choice, num_classes=1):
    """Dt, the width of the features a teacher ``choice`` (``choose_teacher``) gives: 128
    for dlib's descriptors, a trained teacher's embedding width (read from PATH when it
    holds one), else the teacher-lite's (256)."""
    if choice == PRETRAINED_TEACHER:
        return int(dlib_resnet_spec()["embedding_dim"])
    path = choice and (choice if choice.endswith(".npz") else os.path.join(choice, "model.npz"))
    if path and os.path.isfile(path):
        return int(load_stream(path).embedding_dim)
    return int(teacher_lite_spec(num_classes)["embedding_dim"])


def ablation_source(args, own):
    """The ablation folder whose teacher caches a run reuses: ``--ablation`` when given
    (it must exist), else tutorial 07's (``ABLATION_OUT``) when it exists and this is
    not a ``--quick`` run; None when that is ``own`` (the run's own cache folder) or
    missing."""
    if args.quick and not args.ablation:
        return None
    if args.ablation:
        if not os.path.isdir(args.ablation):
            raise SystemExit(f"--ablation {args.ablation}: no such folder")
        src = args.ablation
    elif os.path.isdir(ABLATION_OUT):
        src = ABLATION_OUT
    else:
        return None
    return None if os.path.realpath(src) == os.path.realpath(own) else src


def reuse_caches(src, dst, names=TEACHER_CACHES):
    """Copy the caches ``names`` (files, or folders of files, relative to the folders)
    that the ablation folder ``src`` holds and ``dst`` lacks into ``dst``, and print what
    was copied. The teacher's caches say what they belong to (the backbone's sha256, the
    faces, the head's settings) and the runs their settings, so a copy that does not fit
    this run is computed again. ``src`` is never written. Returns the files copied."""
    if src is None:
        return []
    copied, kept, shown = [], 0, []
    for name in names:                      # a file, or a folder whose files are copied
        path = os.path.join(src, name)
        files = ([os.path.join(name, f) for f in sorted(os.listdir(path))
                  if os.path.isfile(os.path.join(path, f))] if os.path.isdir(path)
                 else [name] if os.path.isfile(path) else [])
        new = [rel for rel in files if not os.path.exists(os.path.join(dst, rel))]
        kept += len(files) - len(new)
        for rel in new:
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel))
        if new:
            shown.append(name + ("/" if os.path.isdir(path) else ""))
        copied += new
    size = sum(os.path.getsize(os.path.join(dst, rel)) for rel in copied) / 2 ** 20
    print(f"reusing the caches of {src}: {len(copied)} files ({size:.1f} MB) copied to {dst}"
          f"{': ' + ', '.join(shown) if shown else ''}"
          + (f"; {kept} already there" if kept else ""))
    return copied


def finished_runs(src):
    """The student runs an ablation folder ``src`` holds finished (relative folder names):
    ``scratch-seedS`` with its metrics.json, ``seedS/VARIANT`` with run.json, metrics.json
    and student.npz. ``run_ablation`` reuses a copied run only where its recorded
    settings, split and bank match, and trains it again otherwise."""
    if src is None or not os.path.isdir(src):
        return []
    done = lambda rel, files: all(os.path.isfile(os.path.join(src, rel, f))  # noqa: E731
                                  for f in files)
    runs = [d for d in sorted(os.listdir(src)) if d.startswith("scratch-seed")
            and done(d, ("metrics.json", "checkpoint.npz"))]
    for d in sorted(os.listdir(src)):
        if d.startswith("seed") and os.path.isdir(os.path.join(src, d)):
            runs += [os.path.join(d, v) for v in sorted(os.listdir(os.path.join(src, d)))
                     if done(os.path.join(d, v), ("run.json", "metrics.json", "student.npz"))]
    return runs


class TeacherFeatures:
    """A teacher's features of the faces tutorial 08 scores, one interface for a trained
    ``FaceNet`` (its embeddings, its classifier's logits) and a ``FrozenTeacher`` (its
    cached descriptors, its head's logits; the test faces scored by the head fitted on
    every training face, the training faces out of fold).

        tf = TeacherFeatures(teacher, split, "OUT/ablation/bank.npz")
        tf.bank                        # FeatureBank of the HR training faces: (N, D), (N, K)
        tf.test_hr, tf.test_lr         # (N_test, D): HR test faces, LR test faces upsampled
        tf.logits_hr, tf.logits_lr     # (N_test, K)
        hr, lr = tf.pairs(pairs)       # (M, D) each: the pairs' HR faces, their LR faces upsampled

    LR faces go to the teacher upsampled: to the split's HR size for a trained teacher,
    to the net's 150 px (batch by batch) for the pretrained one.
    """

    def __init__(self, teacher, split, bank_path=None, log=None):
        self.teacher, self.split = teacher, split
        self.frozen = isinstance(teacher, FrozenTeacher)
        if self.frozen:
            self.bank = teacher.bank(bank_path)
            self.name = teacher.name
            self.test_hr = teacher.descriptors("test-hr", teacher.hr_faces()[1])
            self.test_lr = teacher.descriptors("test-lr", split.lr_test)
            self.logits_hr, self.logits_lr = (teacher.head.logits(d) for d in (self.test_hr,
                                                                                self.test_lr))
        else:
            self.bank = extract_bank(teacher, split.hr_train, cache_path=bank_path, log=log)
            self.name = teacher.spec["name"]
            self.test_hr = embed_images(teacher, split.hr_test)
            self.test_lr = embed_images(teacher, split.lr_up_test)
            self.logits_hr = logits_of(teacher, split.hr_test)
            self.logits_lr = logits_of(teacher, split.lr_up_test)

    @property
    def dim(self):
        return self.bank.dim

    def pairs(self, pairs, method="bicubic"):
        """The pairs' faces through the teacher: (HR (M, D), LR upsampled (M, D))."""
        lr = self.split.lr_size
        if not self.frozen:
            return (embed_images(self.teacher, pairs.faces()),
                    embed_images(self.teacher, pairs.faces(lr, True, method)))
        ft = self.teacher
        hr = source_faces(self.split, ft.data, ft.size, ft.data_root, ft.cache_dir, pairs=pairs)
        return (ft.descriptors("pairs-hr", hr),
                ft.descriptors("pairs-lr", pairs.faces(lr, False, method)))
