"""What a database URL needs installed, for one-line errors that say what to install.

The messages name the URL's scheme (``mysql://``, ``postgresql+psycopg://``) and never
the rest of the URL: a URL may hold a password, and may have come from a secret.
"""

from __future__ import annotations

__all__ = ["async_driver", "missing_driver", "unknown_dialect"]

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
