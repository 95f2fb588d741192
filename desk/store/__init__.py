"""The store: connecting to the database, its tables, and their migrations."""
