"""The ``voronka`` console script: Django's management commands under a friendlier name.

``voronka demo``, ``voronka generate``, ``voronka token create --user LOGIN``, ``voronka migrate`` …
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")
    from django.core.management import execute_from_command_line

    argv = sys.argv[:]
    argv[0] = "voronka"
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
