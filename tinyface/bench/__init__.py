"""Benchmarks: timing helpers and the ``bench kernels`` report. Speed lives here, never in tests."""
from tinyface.bench.timing import let_blas_threads_sleep, median_seconds, sgemm_peak_gflops
from tinyface.models.bench_nets import reference_student, reference_teacher
from tinyface.bench.kernels import bench_layers, student_throughput, threading_trap
from tinyface.bench.torch_oracle import load_torch, torch_conv2d, torch_conv_rows

__all__ = ["let_blas_threads_sleep", "median_seconds", "sgemm_peak_gflops", "reference_student",
           "reference_teacher", "bench_layers", "student_throughput", "threading_trap",
           "load_torch", "torch_conv2d", "torch_conv_rows"]
