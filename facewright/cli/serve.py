"""`facewright serve`: the web UI (facewright.web) on this machine."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from facewright.api import OptionError, resolve_root
from facewright.cli.common import Command
from facewright.web.server import serve
from facewright.web.settings import MAX_UPLOAD_MB, ServerSettings

TOKEN_ENV = "FACEWRIGHT_TOKEN"


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("serve", cmd_serve, "the web UI: every step of the work in a browser, on this machine")
    sub.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: 127.0.0.1, this machine only; any other address makes the "
                          "page reachable from the network, behind the token)")
    sub.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    sub.add_argument("--token", help=f"the login token (default: ${TOKEN_ENV}, else a new random one each start; "
                                      "the environment keeps it out of the process list other users can read)")
    sub.add_argument("--allow", action="append", default=[], metavar="DIR",
                     help="a folder whose media files the pages may offer as inputs (repeatable); nothing outside "
                          "the workspace and these folders is read")
    sub.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                     help="a host name the browser may use to reach the server besides localhost and IP addresses "
                          "(a DNS name pointing at this machine)")
    sub.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB,
                     help=f"largest upload accepted (default: {MAX_UPLOAD_MB})")


def cmd_serve(args: argparse.Namespace) -> int:
    if args.max_upload_mb < 1 or not 0 < args.port < 65536:
        raise OptionError("--max-upload-mb must be at least 1 and --port 1-65535",
                          fix=f"e.g. --max-upload-mb {MAX_UPLOAD_MB} --port 8765")
    token = args.token or os.environ.get(TOKEN_ENV)
    extra = {"token": token} if token else {}
    settings = ServerSettings(workspace=resolve_root(getattr(args, "workspace", None)).resolve(), host=args.host,
                              port=args.port, allowed=tuple(Path(d).expanduser().resolve() for d in args.allow),
                              allowed_hosts=tuple(args.allow_host), debug=getattr(args, "debug", False),
                              max_upload_mb=args.max_upload_mb, **extra)
    serve(settings)
    return 0
