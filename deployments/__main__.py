from deployments.cli import main

raise SystemExit(main())
