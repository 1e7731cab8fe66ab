"""``python -m equirobot``: the ``equirobot`` command, for where its script is not on PATH."""

from equirobot.cli import main

main()
