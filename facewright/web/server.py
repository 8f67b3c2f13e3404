"""Running the app: check the address, print where to log in, serve with uvicorn until Ctrl-C."""
from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

from facewright import api
from facewright.web.settings import ServerSettings


class ServeError(api.InputError):
    """The server cannot start as asked: the port is taken, an allowed folder is missing."""


def check_settings(settings: ServerSettings) -> None:
    for folder in settings.allowed:
        if not folder.is_dir():
            raise ServeError("not a folder", path=folder, fix="give --allow an existing folder")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise ServeError(f"cannot listen on {settings.host}:{settings.port}: "
                             f"{'the port is in use' if taken else exc.strerror}",
                             fix=f"choose another: --port {settings.port + 1}" if taken else
                             "use --host 127.0.0.1 or an address of this machine") from exc


def serve(settings: ServerSettings, announce: Callable[[str], object] = print) -> None:
    try:  # here: the rest of facewright runs without the web server's packages (the `web` extra)
        import uvicorn

        from facewright.web.app import create_app
    except ImportError as exc:
        raise ServeError(f"the web UI's packages are not installed ({exc.name} is missing)",
                         fix="pip install 'facewright[web]' (make demo and make test install it)") from exc

    check_settings(settings)
    app = create_app(settings)
    announce(f"facewright web UI for workspace {Path(settings.workspace).resolve()}")
    if not settings.loopback:
        announce(f"WARNING: listening on {settings.host}: the page is reachable from the network, over plain HTTP "
                 "(put it behind TLS to cross an untrusted network). Anyone with the token below can see the faces "
                 "in this workspace and make signed media; share it only with people who may.")
    for number, folder in enumerate(settings.allowed):
        announce(f"files offered from allowed folder {number}: {folder}")
    announce(f"open (the address holds the login token, valid until the server stops): {settings.login_url}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", server_header=False,
                proxy_headers=False, timeout_graceful_shutdown=5)
