from counterd.cli import main

raise SystemExit(main())
