"""`python -m facewright` and the `facewright` command.

Kept light on purpose: a worker process that `spawn` starts for a pool imports the main script of its parent
(`facewright`'s console script imports `main` from here) before its task. Importing the whole command line
there (torch, the API, every model's wrapper) cost each worker seconds before its first frame.
"""
import sys


def main() -> int:
    from facewright.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
