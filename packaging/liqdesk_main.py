"""Entry script of the PyInstaller bundle: the same `liqdesk` command as the installed console script."""

import multiprocessing

from liqdesk.app.cli import main

if __name__ == "__main__":
    # A frozen program re-runs its entry script in any child process a library spawns (Windows, macOS);
    # freeze_support() turns those runs into the child instead of a second liqdesk.
    multiprocessing.freeze_support()
    raise SystemExit(main())
