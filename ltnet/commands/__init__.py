"""The subcommands of ``ltnet``, one module each."""
