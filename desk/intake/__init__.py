"""Intake: the runner's schedule, each source's state, storing polls and classifying what they bring."""
