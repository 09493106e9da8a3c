"""``python -m hubasync``: the command line.

Python 3.6 parses this file (no annotations syntax): on a Python older than 3.9, importing the
package has already printed one line and exited 2.
"""

import sys

from hubasync.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
