"""The ablation runner: teacher, scratch students, feature bank, selection, five variants.

    split = load_split("lfw")
    res = run_ablation(split, AblationSettings(), "runs/ablation", data="lfw")

Phases (each logs, and each caches its result under ``out`` with the signature of what it
depends on, ``tinyface.cache``, so that a re-run after an interruption redoes
only what is missing):

1. the teacher: ``teacher_path`` (a run folder or its ``model.npz``) is loaded if it
   holds a finished run (``metrics.json``) or is a file; an interrupted run there is
   resumed; otherwise a teacher is trained there with ``train_stream`` (default folder
   ``out/teacher``). It is trained once, on the split's HR training faces. With
   ``teacher_path="dlib-resnet"`` a pretrained teacher is loaded instead, frozen, with
   a softmax head fitted on the target identities (``tinyface.distill.frozen_teacher``).
2. the teacher's rows: identification top-1 at HR and on the LR test faces upsampled
   back, and identity-disjoint verification (``tinyface.eval.disjoint``), cached
   in ``out/teacher_eval.json`` under the teacher's fingerprint.
3. the feature bank of the HR training faces (``out/bank.npz``; ``out/bank-pooled.npz``
   with ``teacher_layer="pooled"``), with the teacher's attention maps for ``at`` (ours
   or the pretrained one's, ``tinyface.distill.frozen_teacher``).
4. the selection for each ratio (``out/selection/ratio-R.npz``).
5. per seed S: the student from scratch (``out/scratch-seedS``, ``train_stream``), then
   each variant fine-tuned from it (``out/seedS/VARIANT``; ``finetune``).
6. the ratio curve: ``selective`` and ``random`` at each of ``ratios`` for the first
   seed (``out/seedS/selective-rR``; at ratio 1 both are ``full``).
7. the report: ``results.md``, ``results.json``, ``ablation.png`` (top-1, mean +- std
   over seeds), ``verification.png``, ``selection_montage.png``, ``graph.png`` and
   ``ratio_curve.png``.

A validation split (``load_split(..., validation=F)``, ``--validation F``) runs the same
phases with F of each identity's training faces in place of the test faces, and no
verification: that is how settings are screened without touching the test faces.

Choices. The split (``split.meta["seed"]``) is fixed for all seeds, since the teacher is
trained once on its training faces; the seeds change the students' initialisation,
shuffling and augmentation, the adapters and the random subsets. Students are taken
at their last epoch (the scratch student from its ``checkpoint.npz``), never picked by
test accuracy; our own teacher too is its run's last epoch (``model.npz``, trained on
every training face with ``validation=0``). Spread is the sample standard
deviation over seeds (ddof = 1).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from tinyface.atomic import write_json
from tinyface.checkpoint import load_model
from tinyface.distill.bank import bank_key, extract_bank, layer_dim, map_attention_size
from tinyface.distill.cross_resolution import cross_resolution_run
from tinyface.distill.finetune import REGRESSION_VARIANTS as REGRESSION
from tinyface.distill.finetune import finetune
from tinyface.distill.frozen_teacher import FrozenTeacher, check_teacher_options, source_faces
from tinyface.distill.label_free import ablation_pool
from tinyface.eval import evaluate_identification
from tinyface.eval.disjoint import disjoint_pairs, verify_disjoint
from tinyface.cache import read_if, read_json, write_with
from tinyface.experiments.report import (ROW_NAMES, TEACHER_ROWS, UNLABELLED, mean_std,
                                         rows_table, scores_text, sizes_record, write_report)
from tinyface.experiments.selection_cache import AblationSelections, cached_selection
from tinyface.experiments.settings import (DEFAULT_RATIOS, INFORMATIVENESS, AblationSettings,
                                           needs_selection, run_signature)
from tinyface.experiments.streams import train_stream
from tinyface.experiments.trained_teacher import evaluate_teacher, load_teacher, ver_summary
from tinyface.models import build_model
from tinyface.train import ResumeMismatchError

__all__ = ["AblationSettings", "run_ablation", "ROW_NAMES", "TEACHER_ROWS", "load_teacher",
           "cached_selection", "mean_std", "DEFAULT_RATIOS", "INFORMATIVENESS", "run_signature"]


def _scratch(split, settings, seed, folder, log):
    """The scratch student of ``seed``: trained (or resumed) once, then loaded.
    Returns its last-epoch ``FaceNet``; cached in ``folder/run.json`` under its config
    and the split."""
    cfg = settings.train_config(seed, settings.scratch_epochs, settings.scratch_lr,
                                settings.scratch_weight_decay)
    folder = Path(folder)
    sig = {"config": cfg.to_dict(), "split": split.meta}
    if read_if(folder / "run.json", sig) is not None and (folder / "checkpoint.npz").is_file():
        log(f"scratch student, seed {seed}: loading {folder}")
    else:       # a checkpoint without metrics.json: an interrupted run, resumed
        resume = (folder / "checkpoint.npz").is_file() and read_json(folder / "metrics.json") is None
        log(f"scratch student, seed {seed}: {'resuming' if resume else 'training'} "
            f"{settings.scratch_epochs} epochs in {folder}")
        try:
            train_stream(split, "student", cfg, folder, resume=resume, log=log, validation=0)
        except ResumeMismatchError:
            log(f"  (the checkpoint in {folder} has other settings: training from scratch)")
            train_stream(split, "student", cfg, folder, resume=False, log=log, validation=0)
        write_with(folder / "run.json", sig, sig)
    model, _ = load_model(folder / "checkpoint.npz")        # the last epoch
    return model.eval()


def _variant_run(student, split, bank, variant, settings, seed, ratio, selection, folder, sig,
                 log, pool=None):
    """One fine-tuning run (cached in ``folder`` under ``sig``): the deployable student,
    its metrics, and the trained ``DistillStudent`` (student + adapter, last epoch)."""
    folder = Path(folder)
    lf = f" + {pool.n} unlabelled faces" if pool is not None else ""
    if read_if(folder / "run.json", sig) is not None and (folder / "student.npz").is_file():
        metrics = read_json(folder / "metrics.json")
        if metrics:
            log(f"{variant}{lf}, seed {seed}{_rtext(variant, ratio)}: loading {folder}")
            model, _ = load_model(folder / "student.npz")
            wrapper, _ = load_model(folder / "checkpoint.npz")      # the last epoch
            return model.eval(), metrics, wrapper.eval()
    epochs = (settings.label_free_epochs if pool is not None and settings.label_free_epochs
              else settings.finetune_epochs)
    lr, wd = settings.finetune_lr, settings.finetune_weight_decay
    if settings.start == "random":       # distil from the start: a fresh student
        student = build_model(student.spec, seed=seed)
        epochs += settings.scratch_epochs
        lr, wd = settings.scratch_lr, settings.scratch_weight_decay
    cfg = settings.train_config(seed, epochs, lr, wd)
    log(f"-- {variant}{lf}, seed {seed}{_rtext(variant, ratio)}: "
        f"{'distilling from a fresh student' if settings.start == 'random' else 'fine-tuning'} "
        f"{epochs} epochs in {folder}")
    res = finetune(student, split, bank, None, settings.distill_config(variant, ratio), cfg,
                   selection=selection, out_dir=folder, pool=pool, log=log)
    write_with(folder / "run.json", sig, sig)
    return res["model"], res["metrics"], res["wrapper"].eval()


def _rtext(variant, ratio):
    return f", ratio {ratio:g}" if needs_selection(variant) else ""


# -------------------------------------------------------------------- runner
def run_ablation(split, settings=None, out="runs/ablation", teacher_path=None, data=None,
                 data_root=None, cache_dir=None, log=print, teacher_weights=None):
    """Run the whole ablation on ``split``; write the report; return the results dict.

    teacher_path: a teacher run folder or ``model.npz`` (default ``out/teacher``), or
    the name of a pretrained teacher (``"dlib-resnet"``), whose weights are looked for
    in ``teacher_weights`` (None: ``load_pretrained``'s search)."""
    settings = AblationSettings() if settings is None else settings.validate()
    pretrained = check_teacher_options(teacher_path, teacher_weights, settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = data or split.meta.get("data", "synthetic")
    say = log or (lambda msg: None)
    where = dict(data=data, data_root=data_root, cache_dir=cache_dir)
    timed, t_start = _Timings(), time.perf_counter()
    say(f"== ablation on {split.describe()}; seeds {settings.seed_list}, variants "
        f"{', '.join(settings.variants)}; output {out}")
    with timed("teacher"):
        say("== 1/6 teacher")
        teacher, frozen = _teacher(split, settings, out, pretrained, teacher_path,
                                   teacher_weights, where, say)
    with timed("teacher_eval"):
        say("== 2/6 identity-disjoint verification pairs and the teacher's rows")
        pairs, pairs_note = disjoint_pairs(data, split, data_root, cache_dir,
                                           synthetic=dict(settings.verification), log=say)
        eval_pairs = _eval_pairs(split, pairs, say)
        teacher_rows = _teacher_rows(teacher, frozen, split, eval_pairs, pairs_note, out, say)
    with timed("bank"):
        say("== 3/6 teacher feature bank")
        bank, pool, gallery = _bank(teacher, frozen, split, settings, out, pairs, eval_pairs,
                                    where, say)
    with timed("selection"):
        say("== 4/6 selection")
        selections = AblationSelections(bank, split, settings, out, say).prepare(
            _selection_ratios(settings), _needs_selection(settings))
    say("== 5/6 students: from scratch, then each variant")
    runs = _Runs(split, settings, out, bank, selections, eval_pairs, pairs, gallery, say, timed)
    for seed in settings.seed_list:
        runs.seed_rows(seed, pool)
    say("== 6/6 accuracy against the selection ratio")
    curve = _ratio_curve(runs, settings)
    results, main_sel = _results(split, settings, out, data, teacher, frozen, teacher_path,
                                 teacher_rows, bank, pool, pairs, pairs_note, selections, runs,
                                 curve)
    results["timings"] = dict(timed, total=time.perf_counter() - t_start)
    files = write_report(results, out, split, bank, main_sel, curve, runs.scores, say)
    results["files"] = [str(f) for f in files]
    write_json(out / "results.json", results)
    say(f"wrote {', '.join(str(f) for f in files + [out / 'results.json'])}")
    say(f"ablation done in {time.perf_counter() - t_start:.0f} s")
    return results


class _Timings(dict):
    """Seconds per phase: ``with timed("bank"): ...`` adds the block's time to "bank"."""

    @contextmanager
    def __call__(self, name):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - t0


# ------------------------------------------------------------- phases 1-4
def _teacher(split, settings, out, pretrained, teacher_path, teacher_weights, where, say):
    """Phase 1: ``(teacher FaceNet, FrozenTeacher or None)``: a pretrained teacher with
    its head (and, for ``at``, the attention rows of its pre-pool map), or ours, loaded,
    resumed or trained at ``teacher_path``."""
    if pretrained:
        frozen = FrozenTeacher(pretrained, split, settings, out, weights=teacher_weights,
                               log=say, **where,
                               attention_size=map_attention_size(settings.variants, split))
        return frozen.model, frozen
    return load_teacher(split, settings, teacher_path or out / "teacher", say), None


def _eval_pairs(split, pairs, say):
    """The pairs verification is measured on: none on a validation screen, which measures
    top-1 on its carved faces only (the pairs are test faces; they still keep the
    unlabelled pool honest)."""
    if not split.is_validation:
        return pairs
    say("validation screen: identification on the validation faces; verification and "
        "cross-resolution verification not measured (their pairs are test faces)")
    return None


def _teacher_rows(teacher, frozen, split, eval_pairs, pairs_note, out, say):
    """Phase 2: the teacher's rows, cached in ``out/teacher_eval.json`` under the
    teacher's fingerprint and the pairs."""
    sig = {"teacher": frozen.key if frozen else bank_key(teacher, split.hr_test),
           "pairs": eval_pairs.meta if eval_pairs is not None else pairs_note}
    rows = read_if(out / "teacher_eval.json", sig)
    if rows is not None:
        say("teacher: loaded its evaluation from teacher_eval.json")
    else:
        method = split.meta.get("lr_method", "bicubic")
        rows = write_with(out / "teacher_eval.json", sig,
                          frozen.rows(eval_pairs, method) if frozen
                          else evaluate_teacher(teacher, split, eval_pairs, method, say))
    for name in TEACHER_ROWS:
        say(f"{name}: {scores_text(rows[name])}")
    return rows


def _bank(teacher, frozen, split, settings, out, pairs, eval_pairs, where, say):
    """Phase 3: ``(bank, unlabelled pool or None, cross-resolution gallery or None)``: the
    teacher's features of the HR training faces (``out/bank.npz``), the label-free pool,
    and the teacher's HR descriptors of the verification pairs."""
    layer = settings.teacher_layer
    bank_file = "bank.npz" if layer == "embedding" else f"bank-{layer}.npz"
    if frozen:                    # descriptors, out-of-fold head logits (attention rows)
        bank = frozen.bank(out / bank_file)
    else:
        bank = extract_bank(teacher, split.hr_train, cache_path=out / bank_file, log=say,
                            layer=layer, attention_size=map_attention_size(settings.variants, split))
    bank.check(len(split.y_train), dim=layer_dim(teacher, layer), num_classes=split.num_classes)
    pool = None
    if settings.label_free and where["data"] == "synthetic":
        say("label-free regression: synthetic faces have no unlabelled faces outside the "
            "split; its rows are left out")
    elif settings.label_free and layer != "embedding":
        say(f"label-free regression regresses the teacher's embedding, not its {layer} "
            f"features; its rows are left out")
    elif settings.label_free:
        pool = ablation_pool(split, settings.label_free_pool, frozen, teacher, pairs, bank.dim,
                             where["data"], where["data_root"], where["cache_dir"], say)
    if pool is not None and not pool.n:
        say("label-free regression: no unlabelled faces in this dataset; its rows are left out")
    # cross-resolution verification: the teacher's HR gallery, once (cached descriptors);
    # the student maps into the space it regressed, so only with the embedding
    gallery = None
    if frozen and eval_pairs is not None and layer == "embedding":
        gallery = frozen.descriptors("pairs-hr", source_faces(
            split, where["data"], frozen.size, where["data_root"], where["cache_dir"],
            pairs=pairs))
    return bank, pool, gallery


def _needs_selection(settings):
    return any(needs_selection(v) for v in settings.variants)     # selective-m too


def _selection_ratios(settings):
    """Phase 4's ratios: the main one (when a variant selects) and the curve's."""
    curve_ratios = [r for r in settings.ratios if r < 1.0]
    return sorted(set(([settings.ratio] if _needs_selection(settings) else []) + curve_ratios))


# ------------------------------------------------------------- phases 5-6
class _Runs:
    """Phases 5-6: the students, each trained (or loaded) once; ``scores``: (row, seed,
    ratio or None) -> its scores, in the order they were made."""

    def __init__(self, split, settings, out, bank, selections, eval_pairs, pairs, gallery,
                 say, timed):
        self.split, self.settings, self.out, self.bank = split, settings, out, bank
        self.selections, self.eval_pairs, self.pairs = selections, eval_pairs, pairs
        self.gallery, self.say, self.timed = gallery, say, timed
        self.method = split.meta.get("lr_method", "bicubic")
        self.scores, self.students = {}, {}

    def evaluate(self, model):
        """A student's scores: top-1, top-5 and verification."""
        ident = evaluate_identification(model, self.split, "student")
        ver = (verify_disjoint(model, self.eval_pairs, self.split.lr_size, method=self.method)
               if self.eval_pairs is not None else None)
        return {"top1": ident["top1"], "top5": ident["top5"], "verification": ver_summary(ver)}

    def seed_rows(self, seed, pool):
        """Phase 5 for ``seed``: its scratch student, then each variant from it (and the
        label-free rows with ``pool``)."""
        with self.timed("scratch"):
            self.students[seed] = _scratch(self.split, self.settings, seed,
                                           self.out / f"scratch-seed{seed}", self.say)
            row = self.scores[("scratch", seed, None)] = self.evaluate(self.students[seed])
            self.say(f"student from scratch, seed {seed}: {scores_text(row)}")
        for variant in self.settings.variants:
            self.variant(variant, seed, self.settings.ratio)
        for variant in (self.settings.label_free if pool is not None and pool.n else ()):
            self.variant(variant, seed, self.settings.ratio, unlabelled=pool)

    def selection(self, seed, ratio):
        return self.selections.get(seed, ratio, self.students.get(seed))

    def variant(self, variant, seed, ratio, unlabelled=None):
        """The scores of one fine-tuning run (made on first use)."""
        selects = needs_selection(variant)        # random, selective, selective-m
        row = variant + (UNLABELLED if unlabelled is not None else "")
        key = (row, seed, ratio if selects else None)
        if key in self.scores:
            return self.scores[key]
        with self.timed("finetune"):
            settings = self.settings
            name = variant if not selects or ratio == settings.ratio else f"{variant}-r{ratio:g}"
            folder = self.out / f"seed{seed}" / (name + ("-unlabelled" if unlabelled is not None else ""))
            sig = run_signature(settings, self.split, self.bank, variant, seed, key[2],
                                pool=unlabelled)
            run_ratio = settings.ratio if ratio is None else ratio
            sel = self.selection(seed, run_ratio) if selects else None
            model, metrics, wrapper = _variant_run(self.students[seed], self.split, self.bank,
                                                   variant, settings, seed, run_ratio, sel,
                                                   folder, sig, self.say, pool=unlabelled)
            cross = None
            if self.gallery is not None and variant in REGRESSION:
                cross = cross_resolution_run(self.gallery, wrapper, self.pairs, self.method,
                                             folder)
            scores = self.scores[key] = {**self.evaluate(model), "cross_resolution": cross,
                                         **{k: metrics.get(k) for k in RUN_RECORD}}
            self.say(f"{ROW_NAMES[row]}, seed {seed}{_rtext(variant, ratio)}: "
                     f"{scores_text(scores)}")
        return scores


# what a row keeps of a fine-tuning run's metrics
RUN_RECORD = ("unlabelled_faces", "regressed_faces", "initial_regression_loss",
              "final_regression_loss", "seconds", "student_parameters", "student_bytes",
              "adapter_parameters", "method_faces")


def _ratio_curve(runs, settings):
    """Phase 6: top-1 of ``selective`` and ``random`` at each of ``settings.ratios``, for
    the first seed (at ratio 1 both are ``full``)."""
    s0 = settings.seed_list[0]
    curve = {"seed": s0, "ratios": list(settings.ratios), "selective": [], "random": []}
    for r in settings.ratios:
        for variant in ("selective", "random"):
            run = runs.variant("full", s0, None) if r >= 1.0 else runs.variant(variant, s0, r)
            curve[variant].append(run["top1"])
    return curve


# ------------------------------------------------------------------ report
def _results(split, settings, out, data, teacher, frozen, teacher_path, teacher_rows, bank,
             pool, pairs, pairs_note, selections, runs, curve):
    """``(results dict for results.json, the selection the report shows or None)``."""
    s0 = settings.seed_list[0]
    main_sel = runs.selection(s0, settings.ratio) if _needs_selection(settings) else None
    results = {
        "rows": rows_table(teacher_rows, runs.scores, settings, split), "settings": settings.to_dict(),
        "split": split.meta, "describe": split.describe(), "data": data,
        "verification": {"note": pairs_note, **(pairs.meta if pairs is not None else {})},
        "sizes": sizes_record(teacher, runs.students[s0], runs.scores), "ratio_curve": curve,
        "teacher": (frozen.fit() and frozen.record()) if frozen else
        {"name": teacher.spec["name"], "pretrained": False,
         "path": str(teacher_path or out / "teacher")},
        "selection": selections.record(s0),
        "runs": [{"variant": v, "seed": s, "ratio": r, **m}
                 for (v, s, r), m in runs.scores.items()],
        "bank": {k: v for k, v in bank.meta.items()},
        "label_free": ({**pool.record(), "text": pool.meta.get("text")}
                       if pool is not None and pool.n else None),
    }
    return results, main_sel
