# The gateway's one image: API, worker, relay, consumer and Flower differ only by command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY setup.cfg pyproject.toml README.md ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > requirements.txt \
 && pip install -r requirements.txt

COPY wsgi.py worker.py celeryconfig.py ./
COPY gateway gateway
COPY tasks tasks
COPY providers providers
COPY events events
RUN pip install --no-deps . && rm -rf /src

RUN useradd --create-home --uid 10001 gateway
USER gateway
WORKDIR /home/gateway

EXPOSE 8000 5555
CMD ["gunicorn", "wsgi:app", "--bind=0.0.0.0:8000", "--worker-class=gthread", "--no-control-socket", "--access-logfile=-"]
