"""`python -m sharelift` runs the command line."""

from sharelift.cli import run

run()
