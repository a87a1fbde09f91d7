"""`python -m pipeline.app.cli` runs the `xlwatch` command line."""

from pipeline.app.cli import main

main()
