"""The ablation runner: teacher, scratch students, feature bank, selection, five variants.

    split = load_split("lfw")
    res = run_ablation(split, AblationSettings(), "runs/ablation", data="lfw")

Phases (each logs, and each caches its result under ``out``, so that a re-run after an
interruption redoes only what is missing):

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
   with ``teacher_layer="pooled"``).
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
from pathlib import Path

from tinyface.distill.bank import bank_key, extract_bank, layer_dim
from tinyface.distill.cross_resolution import cross_resolution_run
from tinyface.distill.finetune import REGRESSION_VARIANTS as REGRESSION
from tinyface.distill.finetune import finetune
from tinyface.distill.frozen_teacher import source_faces
from tinyface.distill.label_free import ablation_pool
from tinyface.experiments.report import (ROW_NAMES, TEACHER_ROWS, UNLABELLED, mean_std, rows_table,
                                     sizes_record, write_report)
from tinyface.experiments.selection_cache import all_selected, cached_selection, read_json, same_json
from tinyface.experiments.settings import (DEFAULT_RATIOS, INFORMATIVENESS, AblationSettings,
                                       run_signature)
from tinyface.experiments.trained_teacher import evaluate_teacher, load_teacher, ver_summary
from tinyface.eval.disjoint import disjoint_pairs, verify_disjoint
from tinyface.models import build_model

__all__ = ["AblationSettings", "run_ablation", "ROW_NAMES", "TEACHER_ROWS", "load_teacher",
           "cached_selection", "mean_std", "DEFAULT_RATIOS", "INFORMATIVENESS", "run_signature"]

def _scratch(split, settings, seed, folder, log):
    """The scratch student of ``seed``: trained (or resumed) once, then loaded.
    Returns its last-epoch ``FaceNet``."""
    from tinyface.checkpoint import load_model
    from tinyface.experiments.streams import train_stream
    from tinyface.train import ResumeMismatchError, TrainConfig
    cfg = TrainConfig(epochs=settings.scratch_epochs, batch_size=settings.batch_size,
                      lr=settings.scratch_lr, weight_decay=settings.scratch_weight_decay,
                      seed=seed, augment=settings.augment,
                      max_shift=settings.max_shift)
    folder = Path(folder)
    m = read_json(folder / "metrics.json")
    if m and same_json(m.get("config"), cfg.to_dict()) and same_json(m.get("split"), split.meta) \
            and (folder / "checkpoint.npz").is_file():
        log(f"scratch student, seed {seed}: loading {folder}")
    else:
        resume = (folder / "checkpoint.npz").is_file() and m is None
        log(f"scratch student, seed {seed}: {'resuming' if resume else 'training'} "
            f"{settings.scratch_epochs} epochs in {folder}")
        try:
            train_stream(split, "student", cfg, folder, resume=resume, log=log, validation=0)
        except ResumeMismatchError:
            log(f"  (the checkpoint in {folder} has other settings: training from scratch)")
            train_stream(split, "student", cfg, folder, resume=False, log=log, validation=0)
    model, _ = load_model(folder / "checkpoint.npz")        # the last epoch
    return model.eval()


def _variant_run(student, split, bank, variant, settings, seed, ratio, selection, folder, sig,
                 log, pool=None):
    """One fine-tuning run (cached in ``folder`` under ``sig``): the deployable student,
    its metrics, and the trained ``DistillStudent`` (student + adapter, last epoch)."""
    from tinyface.checkpoint import load_model
    from tinyface.atomic import write_json
    from tinyface.train import TrainConfig
    folder = Path(folder)
    run = read_json(folder / "run.json")
    lf = f" + {pool.n} unlabelled faces" if pool is not None else ""
    if run and same_json(run.get("sig"), sig) and (folder / "student.npz").is_file():
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
    cfg = TrainConfig(epochs=epochs, batch_size=settings.batch_size, optimizer="sgd", lr=lr,
                      weight_decay=wd, schedule="cosine", seed=seed,
                      augment=settings.augment, max_shift=settings.max_shift)
    log(f"-- {variant}{lf}, seed {seed}{_rtext(variant, ratio)}: "
        f"{'distilling from a fresh student' if settings.start == 'random' else 'fine-tuning'} "
        f"{epochs} epochs in {folder}")
    res = finetune(student, split, bank, variant, cfg, mu=settings.mu, T=settings.T,
                   ratio=ratio, selection=selection, out_dir=folder, log=log,
                   kd_weight=settings.kd_weight, feature_norm=settings.feature_norm,
                   adapter_init=settings.adapter_init, mu_schedule=settings.mu_schedule,
                   per_identity=settings.per_identity, pool=pool)
    write_json(folder / "run.json", {"sig": sig})
    return res["model"], res["metrics"], res["wrapper"].eval()


def _rtext(variant, ratio):
    return f", ratio {ratio:g}" if variant in ("random", "selective") else ""


# -------------------------------------------------------------------- runner
def run_ablation(split, settings=None, out="runs/ablation", teacher_path=None, data=None,
                 data_root=None, cache_dir=None, log=print, teacher_weights=None):
    """Run the whole ablation on ``split``; write the report; return the results dict.

    teacher_path: a teacher run folder or ``model.npz`` (default ``out/teacher``), or
    the name of a pretrained teacher (``"dlib-resnet"``), whose weights are looked for
    in ``teacher_weights`` (None: ``load_pretrained``'s search)."""
    from tinyface.distill.frozen_teacher import check_teacher_options
    from tinyface.atomic import write_json
    settings = AblationSettings() if settings is None else settings.validate()
    pretrained = check_teacher_options(teacher_path, teacher_weights, settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = data or split.meta.get("data", "synthetic")
    say = log or (lambda msg: None)
    t_start = time.perf_counter()
    timings = {}

    def phase(name, t0):
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

    split_seed = int(split.meta.get("seed", 0))
    say(f"== ablation on {split.describe()}; seeds {settings.seed_list}, variants "
        f"{', '.join(settings.variants)}; output {out}")

    # 1-2. teacher and its rows
    t0 = time.perf_counter()
    say("== 1/6 teacher")
    frozen = None
    if pretrained:
        from tinyface.distill.frozen_teacher import FrozenTeacher
        frozen = FrozenTeacher(pretrained, split, settings, out, weights=teacher_weights,
                               data=data, data_root=data_root, cache_dir=cache_dir, log=say)
        teacher = frozen.model
    else:
        teacher = load_teacher(split, settings, teacher_path or out / "teacher", say)
    phase("teacher", t0)
    t0 = time.perf_counter()
    say("== 2/6 identity-disjoint verification pairs and the teacher's rows")
    pairs, pairs_note = disjoint_pairs(data, split, data_root, cache_dir,
                                       synthetic=dict(settings.verification), log=say)
    # a validation screen measures top-1 on its carved faces only: the verification pairs
    # are test faces (they still keep the unlabelled pool honest)
    eval_pairs = None if split.is_validation else pairs
    if split.is_validation:
        say("validation screen: identification on the validation faces; verification and "
            "cross-resolution verification not measured (their pairs are test faces)")
    tkey = frozen.key if frozen else bank_key(teacher, split.hr_test)
    pairs_sig = eval_pairs.meta if eval_pairs is not None else pairs_note
    cache = read_json(out / "teacher_eval.json")
    method = split.meta.get("lr_method", "bicubic")
    if cache and cache.get("key") == tkey and same_json(cache.get("pairs"), pairs_sig):
        teacher_rows = cache["rows"]
        say("teacher: loaded its evaluation from teacher_eval.json")
    else:
        teacher_rows = (frozen.rows(eval_pairs, method) if frozen
                        else evaluate_teacher(teacher, split, eval_pairs, method, say))
        write_json(out / "teacher_eval.json",
                   {"key": tkey, "pairs": pairs_sig, "rows": teacher_rows})
    for name in TEACHER_ROWS:
        say(f"{name}: {_scores_text(teacher_rows[name])}")
    phase("teacher_eval", t0)

    # 3. feature bank
    t0 = time.perf_counter()
    say("== 3/6 teacher feature bank")
    layer = settings.teacher_layer
    bank_file = "bank.npz" if layer == "embedding" else f"bank-{layer}.npz"
    if frozen:                    # descriptors and out-of-fold head logits
        bank = frozen.bank(out / bank_file)
    else:
        bank = extract_bank(teacher, split.hr_train, cache_path=out / bank_file, log=say,
                            layer=layer)
    bank.check(len(split.y_train), dim=layer_dim(teacher, layer), num_classes=split.num_classes)
    pool = None
    if settings.label_free and data == "synthetic":
        say("label-free regression: synthetic faces have no unlabelled faces outside the "
            "split; its rows are left out")
    elif settings.label_free and layer != "embedding":
        say(f"label-free regression regresses the teacher's embedding, not its {layer} "
            f"features; its rows are left out")
    elif settings.label_free:
        pool = ablation_pool(split, settings.label_free_pool, frozen, teacher, pairs, bank.dim,
                             data, data_root, cache_dir, say)
    if pool is not None and not pool.n:
        say("label-free regression: no unlabelled faces in this dataset; its rows are left out")
    # cross-resolution verification: the teacher's HR gallery, once (cached descriptors);
    # the student maps into the space it regressed, so only with the embedding
    gallery = (frozen.descriptors("pairs-hr", source_faces(split, data, frozen.size, data_root,
                                                           cache_dir, pairs=pairs))
               if frozen and eval_pairs is not None and layer == "embedding" else None)
    phase("bank", t0)

    # 4. selections
    t0 = time.perf_counter()
    say("== 4/6 selection")
    needs_sel = any(v in ("random", "selective") for v in settings.variants)
    curve_ratios = [r for r in settings.ratios if r < 1.0]
    sel_ratios = sorted(set(([settings.ratio] if needs_sel else []) + curve_ratios))
    selections = {}
    gap = settings.informativeness == "student-gap"
    for r in sel_ratios:
        if r >= 1.0 or gap:            # student-gap: per seed, once its student is trained
            continue
        selections[r] = cached_selection(bank, split.y_train, r, settings, split_seed,
                                         out / "selection" / f"ratio-{r:g}.npz",
                                         bank.meta["key"], say)
    if settings.ratio >= 1.0 and needs_sel:
        selections[1.0] = all_selected(len(split.y_train), settings)
    phase("selection", t0)
    seed_selections, gap_u = {}, {}

    def selection_for(seed, r):
        """The selection a run of ``seed`` at ratio ``r`` uses (made on first use)."""
        if r >= 1.0 or not gap:
            if r not in selections:
                selections[r] = cached_selection(bank, split.y_train, r, settings, split_seed,
                                                 out / "selection" / f"ratio-{r:g}.npz",
                                                 bank.meta["key"], say)
            return selections[r]
        if (seed, r) not in seed_selections:
            if seed not in gap_u:
                from tinyface.eval import logits_of
                from tinyface.select import student_gap
                gap_u[seed] = student_gap(bank.logits, logits_of(students[seed], split.lr_train),
                                          split.y_train)
            seed_selections[(seed, r)] = cached_selection(
                bank, split.y_train, r, settings, split_seed,
                out / f"seed{seed}" / "selection" / f"ratio-{r:g}.npz", bank.meta["key"], say,
                u=gap_u[seed], u_key=f"student-gap, scratch seed {seed}")
        return seed_selections[(seed, r)]

    # 5. per seed: scratch and the variants
    say("== 5/6 students: from scratch, then each variant")
    runs = {}          # (variant, seed, ratio) -> metrics (+ verification)
    students = {}

    def evaluate_student(model):
        from tinyface.eval import evaluate_identification
        ident = evaluate_identification(model, split, "student")
        ver = (verify_disjoint(model, eval_pairs, split.lr_size, method=method)
               if eval_pairs is not None else None)
        return {"top1": ident["top1"], "top5": ident["top5"], "verification": ver_summary(ver)}

    def do_variant(variant, seed, ratio, unlabelled=None):
        row = variant + (UNLABELLED if unlabelled is not None else "")
        key = (row, seed, ratio if variant in ("random", "selective") else None)
        if key in runs:
            return runs[key]
        t1 = time.perf_counter()
        name = variant if variant not in ("random", "selective") or ratio == settings.ratio \
            else f"{variant}-r{ratio:g}"
        name += "-unlabelled" if unlabelled is not None else ""
        sig = run_signature(settings, split, bank, variant, seed, key[2], pool=unlabelled)
        run_ratio = settings.ratio if ratio is None else ratio
        sel = selection_for(seed, run_ratio) if variant in ("random", "selective") else None
        model, metrics, wrapper = _variant_run(students[seed], split, bank, variant, settings,
                                               seed, run_ratio, sel, out / f"seed{seed}" / name,
                                               sig, say, pool=unlabelled)
        cross = None
        if gallery is not None and variant in REGRESSION:
            cross = cross_resolution_run(gallery, wrapper, pairs, method,
                                         out / f"seed{seed}" / name)
        runs[key] = {**evaluate_student(model), "cross_resolution": cross,
                     "unlabelled_faces": metrics.get("unlabelled_faces"),
                     "regressed_faces": metrics.get("regressed_faces"),
                     "initial_regression_loss": metrics.get("initial_regression_loss"),
                     "final_regression_loss": metrics.get("final_regression_loss"),
                     "seconds": metrics.get("seconds"),
                     "student_parameters": metrics.get("student_parameters"),
                     "student_bytes": metrics.get("student_bytes"),
                     "adapter_parameters": metrics.get("adapter_parameters")}
        say(f"{ROW_NAMES[row]}, seed {seed}{_rtext(variant, ratio)}: "
            f"{_scores_text(runs[key])}")
        phase("finetune", t1)
        return runs[key]

    for seed in settings.seed_list:
        t0 = time.perf_counter()
        students[seed] = _scratch(split, settings, seed, out / f"scratch-seed{seed}", say)
        runs[("scratch", seed, None)] = evaluate_student(students[seed])
        say(f"student from scratch, seed {seed}: {_scores_text(runs[('scratch', seed, None)])}")
        phase("scratch", t0)
        for variant in settings.variants:
            do_variant(variant, seed, settings.ratio)
        for variant in (settings.label_free if pool is not None and pool.n else ()):
            do_variant(variant, seed, settings.ratio, unlabelled=pool)

    # 6. the ratio curve (first seed)
    say("== 6/6 accuracy against the selection ratio")
    curve = {"seed": settings.seed_list[0], "ratios": list(settings.ratios),
             "selective": [], "random": []}
    s0 = settings.seed_list[0]
    for r in settings.ratios:
        for variant in ("selective", "random"):
            if r >= 1.0:       # every face selected: both are the full variant
                curve[variant].append(do_variant("full", s0, None)["top1"])
            else:
                curve[variant].append(do_variant(variant, s0, r)["top1"])

    # report
    rows = rows_table(teacher_rows, runs, settings, split)
    sizes = sizes_record(teacher, students[s0], runs)
    main_sel = selection_for(s0, settings.ratio) if needs_sel else None
    if gap:
        selections.update({r: sel for (seed, r), sel in seed_selections.items() if seed == s0})
    results = {
        "rows": rows, "settings": settings.to_dict(), "split": split.meta,
        "describe": split.describe(), "data": data,
        "verification": {"note": pairs_note, **(pairs.meta if pairs is not None else {})},
        "sizes": sizes, "ratio_curve": curve,
        "teacher": (frozen.fit() and frozen.record()) if frozen else
        {"name": teacher.spec["name"], "pretrained": False,
         "path": str(teacher_path or out / "teacher")},
        "selection": {f"{r:g}": s.info for r, s in selections.items() if hasattr(s, "info")},
        "runs": [{"variant": v, "seed": s, "ratio": r, **m} for (v, s, r), m in runs.items()],
        "bank": {k: v for k, v in bank.meta.items()},
        "label_free": ({**pool.record(), "text": pool.meta.get("text")}
                       if pool is not None and pool.n else None),
        "timings": dict(timings, total=time.perf_counter() - t_start),
    }
    files = write_report(results, out, split, bank, main_sel, curve, runs, say)
    results["files"] = [str(f) for f in files]
    write_json(out / "results.json", results)
    say(f"wrote {', '.join(str(f) for f in files + [out / 'results.json'])}")
    say(f"ablation done in {time.perf_counter() - t_start:.0f} s")
    return results


def _scores_text(r):
    text = f"top-1 {100 * r['top1']:.1f}%"
    if r.get("verification"):
        text += f", verification {100 * r['verification']['accuracy']:.1f}%"
    if r.get("cross_resolution"):
        text += f", cross-resolution {100 * r['cross_resolution']['accuracy']:.1f}%"
    return text
