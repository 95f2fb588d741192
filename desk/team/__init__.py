"""The team: people, their roles and their sign-ins."""
