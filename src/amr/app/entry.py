"""``amr`` (the console script) and ``python -m amr``: the service commands, or the CLI.

Settings are read once here, through amr.settings; what a command line changes for the processes
the supervisor starts (``serve --api-port``, the home) goes into the environment handed to the
supervisor, never into this process's ``os.environ``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from amr.app.args import SERVICE_COMMANDS, SERVICE_HELP, service_parser
from amr.errors import AmrError
from amr.home import check_binary_trusted, check_home_trusted
from amr.settings import default_home, environment_with, load_settings


def run_service_command(argv: list[str]) -> int:
    """Run one service command (``argv[0]`` in ``SERVICE_COMMANDS``); return its exit code."""
    import amr.app.commands as commands  # here, not at the top: the CLI path never loads them
    import amr.app.processes as processes

    args = service_parser().parse_args(argv)
    # Children started by the supervisor inherit this environment, so they see the same port and home.
    env = environment_with({"AMR_API_PORT": str(args.api_port)} if getattr(args, "api_port", None) else {})
    home = Path(args.home).expanduser() if args.home else default_home(env)
    env["AMR_HOME"] = str(home.absolute())
    try:
        # Before amr.toml is read: a home another user controls must not choose what amr runs.
        # `stop` only asks the supervisor to stop, and must work whatever became of the home.
        if args.command != "stop":
            check_home_trusted(home.expanduser().absolute())
        settings = load_settings(home, env)
        if args.command in ("serve", "reload", "api") and settings.engine.server_binary:
            check_binary_trusted(Path(settings.engine.server_binary).expanduser())
        if args.command == "serve":
            return commands.serve(settings, args.detach, env)
        if args.command == "stop":
            return commands.stop(settings)
        if args.command == "reload":
            return commands.reload(settings)
        if args.command == "pki":
            return commands.rotate_certificate(settings)
        if args.command == "api":
            processes.run_api(settings)
        elif args.command == "ha":
            processes.run_ha(settings)
        elif args.command == "monitord":
            processes.run_monitor(settings)
        else:
            processes.run_gateway_worker(settings)
        return 0
    except AmrError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    """The ``amr`` command: a service command, or else a command of the HTTPS client."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVICE_COMMANDS:
        return run_service_command(argv)
    if argv in ([], ["-h"], ["--help"]):
        print(SERVICE_HELP)
    from amr.cli.main import main as cli_main

    return cli_main(argv)
