"""``python -m stratdistill.teacher_spread SWEEP_DIR``: see :mod:`stratdistill.teacher_spread.cli`."""

from stratdistill.teacher_spread.cli import main

raise SystemExit(main())
