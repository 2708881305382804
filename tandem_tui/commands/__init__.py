"""One module per `tandem-tui` sub-command; each exposes ``register(subparsers)``."""
