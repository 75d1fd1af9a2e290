"""Celery entry point: `celery -A worker worker`."""

from gateway import create_app
from gateway.services import get_services

celery = get_services(create_app()).celery
