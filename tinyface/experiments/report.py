"""The ablation's report: rows of mean +- std over seeds, the markdown table, the figures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyface.distill.config import SELECTION_VARIANTS
from tinyface.distill.finetune import VARIANTS
from tinyface.distill.methods import METHOD_VARIANTS, SELECTIVE_METHOD_VARIANTS, variant_row_name
from tinyface.eval import plots
from tinyface.experiments.figures import plot_graph, plot_ratio_curve, plot_selection_montage

TEACHER_ROWS = ("teacher at HR", "teacher at LR, upsampled")
ROW_NAMES = {"scratch": "student from scratch", "none": "student + CE fine-tuning only",
             "kd": "student + KD", "full": "student + full", "random": "student + random",
             "selective": "student + selective"}
# a label-free run's row: the variant's key plus this suffix ("full+unlabelled")
UNLABELLED = "+unlabelled"
ROW_NAMES.update({v + UNLABELLED: f"student + {v} + unlabelled faces"
                  for v in ("full", "random", "selective")})
# the other methods, then selective-m's ("student + selective FSIM", ...)
ROW_NAMES.update({v: variant_row_name(v) for v in METHOD_VARIANTS + SELECTIVE_METHOD_VARIANTS})

def mean_std(values):
    """``(mean, sample std)`` of a list (std 0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def scores_text(r):
    """One run's scores as the log shows them: top-1, verification, cross-resolution."""
    text = f"top-1 {100 * r['top1']:.1f}%"
    if r.get("verification"):
        text += f", verification {100 * r['verification']['accuracy']:.1f}%"
    if r.get("cross_resolution"):
        text += f", cross-resolution {100 * r['cross_resolution']['accuracy']:.1f}%"
    return text


def rows_table(teacher_rows, runs, settings, split):
    rows = {}
    for name in TEACHER_ROWS:
        r = teacher_rows[name]
        ver = r["verification"]
        default = (f"HR {split.hr_size}px" if name == TEACHER_ROWS[0]
                   else f"LR {split.lr_size}px upsampled")
        rows[name] = {"faces": r.get("faces", default),
                      "top1": {"mean": r["top1"], "std": 0.0, "values": [r["top1"]]},
                      "verification": ver and {"mean": ver["accuracy"], "std": 0.0,
                                               "values": [ver["accuracy"]]}}
    rows_of = (("scratch",) + tuple(v for v in VARIANTS if v in settings.variants)
               + tuple(v + UNLABELLED for v in settings.label_free))
    for variant in rows_of:
        ratio = settings.ratio if variant.split("+")[0] in SELECTION_VARIANTS else None
        if (variant, settings.seed_list[0], ratio) not in runs:
            continue                                   # label-free rows without a pool
        rs = [runs[(variant, s, ratio)] for s in settings.seed_list]
        top1 = [r["top1"] for r in rs]
        m, sd = mean_std(top1)
        entry = {"faces": f"LR {split.lr_size}px", "top1": {"mean": m, "std": sd, "values": top1},
                 "verification": None}
        if all(r["verification"] for r in rs):
            acc = [r["verification"]["accuracy"] for r in rs]
            vm, vs = mean_std(acc)
            entry["verification"] = {"mean": vm, "std": vs, "values": acc}
        if all(r.get("cross_resolution") for r in rs):
            acc = [r["cross_resolution"]["accuracy"] for r in rs]
            cm, cs = mean_std(acc)
            entry["cross_resolution"] = {"mean": cm, "std": cs, "values": acc}
        rows[ROW_NAMES[variant]] = entry
    return rows


def sizes_record(teacher, student, runs):
    adapter = next((r["adapter_parameters"] for r in runs.values()
                    if r.get("adapter_parameters")), None)
    return {"student_parameters": student.num_parameters(), "student_bytes": student.nbytes(),
            "student_buffer_bytes": student.buffer_nbytes(),
            "adapter_parameters": adapter, "adapter_bytes": 4 * adapter if adapter else None,
            "adapter_deployed": False, "teacher_parameters": teacher.num_parameters(),
            "teacher_bytes": teacher.nbytes()}


def _fmt(cell):
    if cell is None:
        return "n/a"
    if len(cell["values"]) == 1 and cell["std"] == 0.0:
        return f"{100 * cell['mean']:.1f}"
    return f"{100 * cell['mean']:.1f} ± {100 * cell['std']:.1f}"


def format_table(results):
    """The markdown table of ``results["rows"]``."""
    cross = any(r.get("cross_resolution") for r in results["rows"].values())
    head = "| model | faces | identification top-1 (%) | verification (%) |"
    rule = "|---|---|---:|---:|"
    if cross:
        head += " cross-resolution verification (%) |"
        rule += "---:|"
    lines = [head, rule]
    for name, r in results["rows"].items():
        line = f"| {name} | {r['faces']} | {_fmt(r['top1'])} | {_fmt(r['verification'])} |"
        if cross:
            line += f" {_fmt(r.get('cross_resolution'))} |"
        lines.append(line)
    return "\n".join(lines)


def _teacher_text(results):
    """What a pretrained teacher is and how its head was fitted ('' for ours)."""
    t = results.get("teacher") or {}
    if not t.get("pretrained"):
        return ""
    h = t.get("head") or {}
    tuning = t.get("tuning")
    state = "frozen" if not tuning else (
        f"its last {tuning['settings']['blocks']} residual block(s) and embedding layer tuned "
        f"on the training faces{' at HR and at LR, upsampled' if tuning['settings']['inputs'] == 'hr+lr' else ''} "
        f"({tuning['settings']['epochs']} epochs, rate {tuning['settings']['lr']:g}), the rest frozen")
    text = (f", {t['name']} pretrained on other people, {state} (HR faces {t['hr_source']}, "
            f"resized to {t['input_size']}px), with a softmax head on its L2-normalised "
            f"descriptors fitted on the training faces")
    if h:
        text += (f" (penalty {h['penalty']:g}, the lowest cross-entropy on "
                 f"{100 * h['val_fraction']:.0f}% of each identity's training faces); KD and "
                 f"the selection use its {h['folds']}-fold out-of-fold logits (top-1 "
                 f"{100 * h['oof_top1']:.1f}%, {100 * h['oof_confidence_below_half']:.0f}% of "
                 f"the faces below confidence 0.5), the regression its raw descriptors")
    return text


def read_results(path):
    """An ablation's ``results.json`` (or a tutorial's table of the same layout) as a dict;
    a ValueError naming the file when it cannot be read or has no ``rows``."""
    try:
        results = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read an ablation's results.json ({e})") from None
    if not isinstance(results, dict) or not isinstance(results.get("rows"), dict):
        raise ValueError(f"{path}: not an ablation's results.json (it has no 'rows')")
    return results


def results_label(results):
    """A short name of a run for a legend: its data and teacher ("lfw, teacher dlib-resnet",
    "lfw, our teacher (lfw-teacher)")."""
    t = results.get("teacher") or {}
    teacher = (f"our teacher ({Path(t['path']).name})" if t.get("pretrained") is False
               and t.get("path") else f"teacher {t.get('name', '?')}")
    return f"{results.get('data', '?')}, {teacher}"


def write_report(results, out, split, bank, selection, curve, runs, say):
    s = results["settings"]
    sizes = results["sizes"]
    ver = results["verification"]
    table = format_table(results)
    seeds = ", ".join(str(s["first_seed"] + i) for i in range(s["seeds"]))
    if ver["note"].startswith("n/a"):
        ver_text = ver["note"]
    else:
        ver_text = (f"{ver['note']}; cosine similarity, 10-fold protocol (each fold's threshold "
                    f"chosen on the other folds); students at {split.lr_size}x{split.lr_size}, "
                    f"the teacher at HR or on the LR faces upsampled")
    lines = [f"# Selective knowledge distillation: ablation on {results['data']}", "",
             f"{results['describe']}; split seed {split.meta.get('seed')}.", "",
             table, "",
             f"Mean ± sample std over {s['seeds']} seed(s) {seeds} "
             f"(teacher rows: one teacher). Identification: closed-set top-1 on the split's "
             f"{'validation' if split.meta.get('validation') else 'test'} "
             f"faces. Verification: {ver_text}.", "",
             f"Students: {s['scratch_epochs']} epochs from scratch (SGD lr {s['scratch_lr']:g}, "
             f"cosine, weight decay {s.get('scratch_weight_decay', 5e-4):g}), then "
             f"{s['finetune_epochs']} epochs of fine-tuning (SGD lr {s['finetune_lr']:g}, "
             f"cosine, weight decay {s.get('finetune_weight_decay', 5e-4):g}); batch "
             f"{s['batch_size']}; last epoch reported. "
             f"Regression: mu {s['mu']:g} ({s['mu_schedule']}), {s['feature_norm']} features "
             f"(the teacher's {s.get('teacher_layer', 'embedding')}), "
             f"adapter {s['adapter_init']}; KD: T {s['T']:g}, weight {s['kd_weight']:g}; "
             f"selection ratio {s['ratio']:g} ({'per identity' if s['per_identity'] else 'global'}, "
             f"k {s['k']}, alpha {s['alpha']:g}); random: a random subset of the same size.", "",
             *(["Selective methods (student + selective M): the method's term on the "
                "selected faces only (the selection above), at the method's weight, CE on "
                "every face, no regression.", ""]
               if any(v in SELECTIVE_METHOD_VARIANTS for v in s["variants"]) else []),
             f"Deployed student: {sizes['student_parameters']:,} parameters "
             f"({sizes['student_bytes']:,} bytes); the adapter "
             f"({sizes['adapter_parameters'] or 0:,} parameters) is used in training only. "
             f"Teacher: {sizes['teacher_parameters']:,} parameters{_teacher_text(results)}.", "",
             *([f"L{results['label_free']['text'][1:]}; the 'unlabelled faces' rows regress "
                f"the teacher on them too (weight 1, no labels) in every fine-tuning epoch.", ""]
               if results.get("label_free") and results["label_free"].get("text") else []),
             *(["Cross-resolution verification: the teacher's descriptor of the HR face of "
                "each pair against the student's output, through its adapter, on the LR "
                "face (cosine; the deployable cross-resolution student is saved as "
                "cross_resolution.npz in each run's folder).", ""]
               if any(r.get("cross_resolution") for r in results["rows"].values()) else []),
             f"Time: {results['timings']['total']:.0f} s in all ("
             + ", ".join(f"{k} {v:.0f} s" for k, v in results["timings"].items() if k != "total")
             + ")."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    say("")
    say(table)
    say("")
    files = [out / "results.md"]
    spread = "one seed" if s["seeds"] == 1 else f"mean ± std over {s['seeds']} seeds"
    top1 = {name: (100 * r["top1"]["mean"], 100 * r["top1"]["std"])
            for name, r in results["rows"].items()}
    files.append(plots.plot_bars(top1, out / "ablation.png", ylabel="top-1 identification (%)",
                                 title=f"ablation, {results['data']} ({spread})"))
    verif = {name: (100 * r["verification"]["mean"], 100 * r["verification"]["std"])
             for name, r in results["rows"].items() if r["verification"]}
    if verif:
        files.append(plots.plot_bars(verif, out / "verification.png",
                                     ylabel="identity-disjoint verification (%)",
                                     title=f"verification, {results['data']}"))
    if selection is not None and not selection.mask.all():
        files.append(plot_selection_montage(split.hr_train, split.y_train, selection.mask,
                                              out / "selection_montage.png", names=split.names))
        files.append(plot_graph(bank.embeddings, split.y_train, selection.mask,
                                       selection.graph, out / "graph.png", names=split.names))
    baselines = {}
    for key, label in (("none", "CE fine-tuning only"), ("scratch", "from scratch")):
        r = runs.get((key, curve["seed"], None))
        if r:
            baselines[label] = r["top1"]
    if curve["ratios"]:
        files.append(plot_ratio_curve(curve, out / "ratio_curve.png", baselines=baselines))
    return files


# ------------------------------------------------------------------- pictures
