"""``python -m sevflow``: the same as the ``sevflow`` command."""

from sevflow.cli import main

raise SystemExit(main())
