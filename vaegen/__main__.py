"""`python -m vaegen` runs the command-line tool (and is what torchrun launches)."""

from vaegen.cli import main

if __name__ == "__main__":
    main()
