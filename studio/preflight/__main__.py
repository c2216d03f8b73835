from studio.preflight import main

raise SystemExit(main())
