"""``python -m service`` is the ``chainserve`` command."""

from service.cli import main

raise SystemExit(main())
