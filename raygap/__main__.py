import sys

from raygap.cli import main

if __name__ == "__main__":  # spawned worker processes (bench --size gpu) import this module too
    sys.exit(main())
