"""Alembic environment of the metadata database (shipped inside pipeline-core).

Called through :mod:`pipeline_core.store.migrate`, which passes an open connection in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from pipeline_core.store.migrate import compare_server_default
from pipeline_core.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `pipeline-run db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    compare_server_default=compare_server_default,
)
with context.begin_transaction():
    context.run_migrations()
