"""Configuration: the YAML file's schema and loading, and the checks of secrets and credentials."""
