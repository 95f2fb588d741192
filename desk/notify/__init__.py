"""Notifying people: alert rules and their outbox, the mailer, and the banner of what is broken."""
