"""What a database URL needs installed, and why a connection failed, for one-line errors
that say what to do.

The messages show the URL through :func:`shown_url` (its password, and any password-like
query value, as ``***``): a URL may hold a password, and may have come from a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

__all__ = ["async_driver", "cannot_connect", "missing_driver", "shown_url", "unknown_dialect"]

_POSTGRES = "pip install 'pipeline-connector-jdbc[postgres]'"
_MYSQL = "pip install 'pipeline-connector-jdbc[mysql]'"
#: the URL scheme to write for each database, and what to install for it
_SCHEMES = {
    "postgresql": ("postgresql+psycopg", _POSTGRES),
    "mysql": ("mysql+pymysql", _MYSQL),
    "mariadb": ("mariadb+pymysql", _MYSQL),
    "sqlite": ("sqlite", None),
}


def _fix(backend: str, module: str) -> str:
    """How to get ``module`` (the DBAPI module a URL's driver imports)."""
    top = module.partition(".")[0]
    if top == "psycopg":
        return _POSTGRES
    if top == "psycopg2":
        return (
            f"write the URL as postgresql+psycopg://… and {_POSTGRES} "
            "(or pip install psycopg2-binary)"
        )
    if top == "pymysql":
        return _MYSQL
    if top == "MySQLdb":
        # the driver SQLAlchemy picks for a bare mysql:// or mariadb:// URL
        return f"write the URL as {backend}+pymysql://… and {_MYSQL} (or pip install mysqlclient)"
    package = {
        "mysql": "mysql-connector-python",
        "mariadb": "mariadb",
        "pyodbc": "pyodbc",
        "pymssql": "pymssql",
        "oracledb": "oracledb",
        "cx_Oracle": "oracledb",
    }.get(top)
    if package is not None:
        return f"pip install {package}"
    return f"install the Python package that provides {module}"


def shown_url(url: str) -> str:
    """``url`` for messages: the password (and any password-like query value) as ***."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL at all: show only its scheme
        return url.partition("://")[0] + "://…"
    query = {
        k: ("***" if any(w in k.lower() for w in ("pass", "secret", "token")) else v)
        for k, v in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


#: (what the driver's message says, the fix) — first match wins
_CONNECT_FIXES = (
    (
        ("access denied", "password authentication failed", "authentication failed"),
        "check the user name and password",
    ),
    (("unknown database", "does not exist"), "create the database, or fix its name in the URL"),
    (
        ("connection refused", "can't connect", "could not connect", "timed out", "timeout"),
        "check that the server is running and listening at {where}",
    ),
    (
        (
            "name or service not known",
            "unknown host",
            "could not translate host",
            "nodename nor servname",
            "getaddrinfo",
        ),
        "check the host name in the URL",
    ),
    (("unable to open database file",), "check that the file's folder exists and is writable"),
)


def cannot_connect(url: str, driver: str, exc: Any) -> str:
    """One line for a failed connection: the URL (password hidden), the driver, what the
    driver said and what to do about it."""
    said = " ".join(str(exc).split())
    lower = said.lower()
    try:
        parsed = make_url(url)
        where = f"{parsed.host or 'localhost'}:{parsed.port or 'its default port'}"
    except Exception:
        where = "the URL's host and port"
    fix = "check the URL and that the database server is reachable"
    for words, advice in _CONNECT_FIXES:
        if any(w in lower for w in words):
            fix = advice.format(where=where)
            break
    return f"cannot connect to {shown_url(url)} (driver {driver}): {said}: {fix}"


def missing_driver(scheme: str, backend: str, module: str, why: str | None = None) -> str:
    """``module`` could not be imported for a ``scheme://`` URL (``why``: the import
    error, when the module exists but failed to import)."""
    state = "is not installed" if why is None else f"failed to import ({why})"
    return f"{scheme}:// needs the Python module {module}, which {state}: {_fix(backend, module)}"


def unknown_dialect(scheme: str, backend: str, driver: str | None) -> str:
    """SQLAlchemy has no dialect (or no such driver of one) for a ``scheme://`` URL."""
    if backend == "postgres":
        return f"{scheme}:// is not an SQLAlchemy URL scheme: write postgresql+psycopg://…"
    if driver is not None and backend in _SCHEMES:
        write, install = _SCHEMES[backend]
        fix = f" ({install})" if install else ""
        return f"{scheme}://: SQLAlchemy has no {backend} driver {driver!r}; write {write}://…{fix}"
    return (
        f"{scheme}://: no SQLAlchemy dialect {backend!r} is installed (the documented ones: "
        "sqlite, postgresql+psycopg, mysql+pymysql); install the package "
        "that provides it"
    )


def async_driver(scheme: str, backend: str) -> str:
    """A ``scheme://`` URL names an asyncio driver; the connector runs blocking drivers
    in threads."""
    instead = f": write {_SCHEMES[backend][0]}://…" if backend in _SCHEMES else ""
    return f"{scheme}:// is an asyncio driver; the jdbc connector needs a regular one{instead}"
