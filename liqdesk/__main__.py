from liqdesk.app.cli import main

raise SystemExit(main())
