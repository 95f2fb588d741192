"""Configuration: the YAML file's sections and loading (schema.py, the entry point), and the checks of what
the file alone cannot show: secrets, credentials, the database (preflight.py)."""
