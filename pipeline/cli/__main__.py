"""`python -m pipeline.cli` runs the `xlwatch` command line."""

from pipeline.cli import main

main()
