"""PostgreSQL timeouts: a vanished or stuck database fails a request instead of hanging it.

Without them a request (and a worker thread) waits for as long as TCP allows. Each default can be
overridden in the URL, as SQLite's `?timeout=` is:

    ?connect_timeout=5              seconds to establish a connection (libpq)
    ?tcp_user_timeout=10000         ms that sent data may stay unacknowledged before the connection
                                    is dropped: a server that vanished without a reset
    ?options=-c statement_timeout=30s -c lock_timeout=10s   server-side limits (libpq `options`);
                                    a limit the URL's options do not set keeps its default
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import URL

# libpq connection parameters: seconds, and milliseconds.
DEFAULT_CONNECT = {"connect_timeout": "5", "tcp_user_timeout": "10000"}
# Server settings sent in libpq's `options`. Generous for the audit CLI and the report's queries,
# which scan more than a hook call does; a hook call's own writes take milliseconds.
DEFAULT_SERVER = {"statement_timeout": "30s", "lock_timeout": "10s"}

# The drivers that take libpq's parameters (psycopg 3 and psycopg2; "postgresql://" means psycopg2).
_LIBPQ_DRIVERS = {"psycopg", "psycopg2"}


def connect_args(url: URL) -> dict[str, Any]:
    """The driver arguments that add the default timeouts the URL does not set itself."""
    if url.get_driver_name() not in _LIBPQ_DRIVERS:
        return {}
    args: dict[str, Any] = {name: value for name, value in DEFAULT_CONNECT.items() if name not in url.query}
    given = url.query.get("options", "")
    options = given if isinstance(given, str) else " ".join(given)
    missing = [f"-c {name}={value}" for name, value in DEFAULT_SERVER.items() if not _sets(options, name)]
    if missing:
        # Passed as a connect argument, `options` replaces the URL's: keep what the URL said.
        args["options"] = " ".join([options, *missing]).strip()
    return args


def _sets(options: str, name: str) -> bool:
    """Whether libpq `options` set this server parameter (`-c name=v`, `-cname=v` or `--name=v`)."""
    return re.search(rf"(?:-c\s*|--){re.escape(name)}=", options) is not None
