"""One module per `counterd` subcommand; each defines register(subparsers)."""
