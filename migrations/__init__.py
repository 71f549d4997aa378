"""Alembic migrations of Tradewind's metadata database (`tradewind db migrate`)."""
