"""``python -m tinyface ...``: see ``python -m tinyface --help``."""
from tinyface.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
