"""Durable state on the board: SQLite stores (verdict history)."""
