"""``python -m tinyface bench``: kernel and model benchmarks (filled in below)."""


def register(sub):
    p = sub.add_parser("bench", help="benchmark kernels and models")
    p.set_defaults(func=lambda args: 0)
