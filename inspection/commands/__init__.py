"""One module per ``inspection`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``."""
