"""The runners: the two streams end to end, the ablation, and what they report.

- ``streams``: train one stream (the teacher on HR faces, the student on LR faces) on a
  split, pick its epoch on validation faces, score the test faces once (``train_stream``);
- ``trained``: reuse a trained stream's run folder, refusing one from another split
  (``load_trained``);
- ``deployment``: the deployed student's bytes and faces/s;
- ``fold_verification``: identity-disjoint LFW verification, one model per test fold;
- ``settings``, ``ablation``, ``report``, ``figures``: the ablation of the distillation
  variants (``python -m tinyface ablation``), its settings, table and plots;
- ``trained_teacher``, ``selection_cache``: the ablation's own teacher and its cached
  selections.

``tinyface.cli`` commands and the tutorials call these functions; they hold the logic
so that scripts stay thin. The method itself lives in ``tinyface.distill``.
"""
from tinyface.experiments.deployment import deployment_report, format_deployment
from tinyface.experiments.streams import STREAM_VALIDATION, build_stream_model, load_stream, train_stream
from tinyface.experiments.trained import load_trained
from tinyface.experiments.deployment import measure_throughput
from tinyface.experiments.settings import AblationSettings, method_weight_item
from tinyface.experiments.report import ROW_NAMES, TEACHER_ROWS, read_results, results_label
from tinyface.experiments.figures import plot_graph, plot_selection_montage
from tinyface.experiments.selection_cache import cached_selection
from tinyface.experiments.trained_teacher import load_teacher
from tinyface.experiments.ablation import run_ablation

__all__ = ["train_stream", "load_stream", "build_stream_model", "STREAM_VALIDATION",
           "load_trained", "deployment_report", "format_deployment"]
__all__ += ["measure_throughput", "AblationSettings", "ROW_NAMES", "TEACHER_ROWS", "plot_graph",
            "plot_selection_montage", "cached_selection", "load_teacher", "run_ablation"]
__all__ += ["method_weight_item", "read_results", "results_label"]
