"""``recon serve`` and ``recon serve-passwd``: the review page (:mod:`engine.web`) on this
machine, or beyond it with sign-in.

``serve`` listens on 127.0.0.1 unless ``--host`` says otherwise; on any other address it refuses
to start without authentication (``--token-env`` or ``--users``). ``serve-passwd`` adds a
reviewer to a users file (a salted scrypt hash; the password is asked for, or read from
standard input when it is not a terminal).
"""

from __future__ import annotations

import getpass
import sys

from models.errors import ReconError


def register(sub) -> dict:
    """Add ``serve`` and ``serve-passwd`` to ``sub``; returns their handlers."""
    s = sub.add_parser(
        "serve", help="the review page in a browser: queue, proposals, decisions, manual match, write-back, report",
        description="Serve the review page for a workspace: / the queue, /matches/MATCH_ID a proposal, "
                    "/report?period=YYYY-MM the month-end report, /healthz. On an address other than a loopback one "
                    "it refuses to start without --token-env or --users.")
    s.add_argument("--workspace", required=True, metavar="FILE", help="the workspace file")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    s.add_argument("--token-env", metavar="NAME",
                   help="sign-in with a shared access token held in this environment variable (16+ characters); "
                        "each reviewer gives their name at sign-in")
    s.add_argument("--users", metavar="FILE", help="sign-in with the name:hash lines of FILE (see recon serve-passwd)")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name the page is reached by beyond the address served (e.g. recon.example.lan)")
    s.add_argument("--rules", metavar="FILE", help="rule-set file whose adjustment causes a manual match may use")
    s.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    p = sub.add_parser("serve-passwd", help="add a reviewer (or change their password) in a users file for recon serve")
    p.add_argument("users", metavar="FILE", help="the users file (created 0600 when missing)")
    p.add_argument("name", metavar="NAME", help="the reviewer's name, recorded with their decisions")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return {"serve": _cmd_serve, "serve-passwd": _cmd_passwd}


def _hosts(host: str, extra: list[str]) -> list[str]:
    if host in ("0.0.0.0", "::"):
        return ["*"]  # every address of the machine: the Host header cannot be known in advance
    names = ["127.0.0.1", "localhost", "::1", "[::1]", host, f"[{host}]" if ":" in host else host, *extra]
    return list(dict.fromkeys(names))


def _cmd_serve(args) -> int:
    from engine.web.auth import Auth, require_safe_bind

    auth = Auth.configure(token_env=args.token_env, users_file=args.users)
    require_safe_bind(args.host, auth)
    if not 0 < args.port < 65536:
        raise ReconError(f"--port {args.port}: give a port between 1 and 65535")
    try:
        import uvicorn

        from engine.web.app import create_app
    except ImportError as exc:
        raise ReconError(f"recon serve needs the web extra ({exc.name} is missing): pip install 'recon[web]'") from None
    app = create_app(args.workspace, auth=auth, rules=args.rules, hosts=_hosts(args.host, args.allowed_host))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"recon serve: reviewing {args.workspace} at http://{shown}:{args.port}/ "
          f"({'sign-in: ' + auth.mode if auth.required else 'this machine only, as ' + str(auth.local_user)})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _cmd_passwd(args) -> int:
    from engine.web.auth import add_user

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ReconError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    add_user(args.users, args.name, password)
    print(f"recon serve-passwd: {args.name} can sign in (users file {args.users})")
    return 0
