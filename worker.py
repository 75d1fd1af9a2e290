"""Celery entry point: `celery -A worker worker`."""

from gateway import create_app

celery = create_app().extensions["celery"]
