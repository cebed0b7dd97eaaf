#!/bin/sh
# Starts the example API, creates the SQLite table, syncs the API into it, stops the API.
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-.venv/bin/pipeline-run}
export EXAMPLE_API_PORT=${EXAMPLE_API_PORT:-8765}
mkdir -p examples/output
"$PY" examples/api_server.py "$EXAMPLE_API_PORT" &
api=$!
trap 'kill $api 2>/dev/null || true' EXIT INT TERM
"$PY" - <<'PY'
import sqlite3, time, urllib.request, os
port = os.environ["EXAMPLE_API_PORT"]
for _ in range(100):  # wait for the API
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/orders?per_page=1", timeout=1)
        break
    except OSError:
        time.sleep(0.05)
with sqlite3.connect("examples/output/orders.db") as db:
    db.execute(
        "CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY, customer TEXT,"
        " status TEXT, amount NUMERIC, created_at TEXT)"
    )
PY
"$RUN" run examples/api_to_sqlite.yaml "$@"
"$PY" -c "import sqlite3; print('rows in examples/output/orders.db:', sqlite3.connect('examples/output/orders.db').execute('select count(*) from orders').fetchone()[0])"
