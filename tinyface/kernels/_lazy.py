"""Re-export the public functions of a tier's submodules, importing them on first use."""
import importlib


def lazy_exports(package, modules):
    """Return ``(__getattr__, __dir__)`` for a package that re-exports ``modules``.

    A name is looked up in each submodule in turn (each imported once, on demand), so
    importing the package stays cheap and compiles nothing.
    """
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in modules:                      # ``from package import submodule``
            return importlib.import_module(f"{package}.{name}")
        for mod in modules:
            module = importlib.import_module(f"{package}.{mod}")
            if not name.startswith("_") and hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {package!r} has no op {name!r}")

    def __dir__():
        names = []
        for mod in modules:
            module = importlib.import_module(f"{package}.{mod}")
            names += [n for n in dir(module) if not n.startswith("_") and n.endswith(("_forward", "_backward", "_loss"))]
        return sorted(set(names))

    return __getattr__, __dir__
