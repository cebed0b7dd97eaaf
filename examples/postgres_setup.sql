-- Tables of the SQL connector examples (PostgreSQL).
DROP TABLE IF EXISTS paid_orders;
CREATE TABLE paid_orders (
    order_id   INTEGER PRIMARY KEY,
    customer   TEXT NOT NULL,
    amount     NUMERIC(10, 2) NOT NULL,
    vat        NUMERIC(10, 2) NOT NULL,
    total      NUMERIC(10, 2) NOT NULL
);
DROP TABLE IF EXISTS customer_totals;
CREATE TABLE customer_totals (
    customer   TEXT PRIMARY KEY,
    orders     INTEGER NOT NULL,
    revenue    NUMERIC(12, 2) NOT NULL
);
