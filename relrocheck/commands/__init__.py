"""One module per subcommand: NAME, HELP, ORDER, configure_parser(parser), execute(args)."""
