"""`python -m cli …` is the same as `leads …`."""

from cli.main import main

raise SystemExit(main())
