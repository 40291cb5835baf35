# One image for the web server and the worker. Build: docker compose build
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_DEBUG=1 DATA_DIR=/tmp/build python manage.py collectstatic --noinput \
    && rm -rf /tmp/build && useradd --system --home /app console && mkdir -p /data && chown console /data
USER console
EXPOSE 8000
CMD ["gunicorn", "orchestrator.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
