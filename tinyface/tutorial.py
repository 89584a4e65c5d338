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

Modes: ``--quick`` uses small built-in synthetic faces (or ORL where a script says so)
and must finish in about a minute on 2 cores; the default ("full") uses real LFW when
``--data-root`` is given or the shared data folder exists, and synthetic faces otherwise.
"""
import argparse
import os
import sys
import time

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
    from tinyface.data import default_data_root
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
    from tinyface.pipeline import load_split
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
        import matplotlib.pyplot as plt
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
