from simsparse.cli import main

raise SystemExit(main())
