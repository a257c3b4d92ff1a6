from dlbench.cli import main

raise SystemExit(main())
