"""Sub-commands of the ``multimodal-virt`` command line.

Each module exposes ``add_parser(subparsers)`` which registers its commands
and sets ``func`` (called with the parsed arguments, returns an exit code).
"""
