# One image for the console's web server (docker-compose.yml) and the gateways' agents
# (docker-compose.gateway.yml, which runs `manage.py agent` as root for the Docker socket).
# Build: docker compose build
FROM python:3.11.11-slim-bookworm

# Production unless told otherwise: without DJANGO_SECRET_KEY and FIELD_ENCRYPTION_KEY a container
# refuses to start, rather than making keys inside itself that are lost with it.
# STATIC_ROOT is in the image, not under DATA_DIR: a volume on /data would hide it.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_DEBUG=0 DATA_DIR=/data STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Collected with the production storage, whose manifest every page needs. Production settings want
# both keys even for this; these placeholders live only in this command and sign or encrypt nothing.
RUN DJANGO_SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEY=collectstatic-only DATA_DIR=/tmp/build \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build && useradd --system --home /app console && mkdir -p /data && chown console /data
USER console
EXPOSE 8000
# Threads: a page that waits a few seconds for a gateway's agent holds one thread, and the agent's own calls
# to the agent API still find one free.
CMD ["gunicorn", "orchestrator.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "--access-logfile", "-"]
