"""``python -m wmi`` runs the command-line interface."""

from wmi.cli import main

main()
