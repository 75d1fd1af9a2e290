# The gateway's one image: API, workers, relay, consumer, Flower and the migration differ only
# by command. Built in two stages: the runtime keeps the virtualenv, not the tools that made it.
FROM python:3.11-slim AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, in their own layer: a code change does not reinstall them.
# Only install_requires: the test extras never reach the image.
COPY setup.cfg pyproject.toml README.md ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > requirements.txt \
 && pip install -r requirements.txt

COPY wsgi.py worker.py celeryconfig.py ./
COPY gateway gateway
COPY tasks tasks
COPY providers providers
COPY events events
# Not editable: the packages and wsgi/worker/celeryconfig land in site-packages, /src stays
# behind. pip and setuptools are not needed to run them.
RUN pip install --no-deps . \
 && pip uninstall --yes pip setuptools


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

COPY --from=build /opt/venv /opt/venv
RUN useradd --create-home --uid 10001 gateway
USER gateway
WORKDIR /home/gateway

EXPOSE 8000 5555
# Liveness of the default command, the API; compose gives the other services their own checks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
# gunicorn, Celery, the relay and the consumer all stop gracefully on SIGTERM.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "wsgi:app", "--bind=0.0.0.0:8000", "--config=python:gateway.serving", "--no-control-socket", "--access-logfile=-"]
