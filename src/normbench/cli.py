"""The ``normbench`` command: a table of subcommands.

    normbench train [overrides]     train one configuration (Hydra; -m sweeps a grid)
"""

from __future__ import annotations

import sys
from typing import Callable

from . import __version__


def _train(args: list[str]) -> int:
    from .run import hydra_main

    sys.argv = ["normbench train", *args]  # Hydra reads its flags and overrides from sys.argv
    hydra_main()
    return 0


# name -> (what it does, how to run it with the remaining arguments)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train one configuration, or sweep a grid with -m (Hydra overrides: key=value)", _train),
}


def usage() -> str:
    lines = ["usage: normbench <command> [args]", "", "commands:"]
    lines += [f"  {name:<10} {what}" for name, (what, _) in COMMANDS.items()]
    lines += ["", "normbench <command> --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"normbench {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"normbench: error: unknown command '{args[0]}'; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command[1](args[1:])


if __name__ == "__main__":
    sys.exit(main())
