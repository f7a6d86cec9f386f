from neurocwm.cli import main

raise SystemExit(main())
