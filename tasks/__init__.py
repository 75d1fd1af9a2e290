"""Celery: the app factory, one task per pipeline stage, the chain builder and signal handlers."""
