from relrocheck.cli import main

raise SystemExit(main())
