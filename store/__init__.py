"""The incident store: SQLAlchemy tables and repositories, on PostgreSQL or SQLite."""
