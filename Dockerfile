# The API image: granian (python -m serving) serving the app on 0.0.0.0:5000 as a non-root user.
# Build: docker build -t jwt-api .   Run with docker compose (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user that owns nothing in /app: the code is read-only to it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code (.dockerignore keeps out .env, tests, .venv, node_modules, .git).
COPY . .

USER app

ENV APP_ENV=production \
    FLASK_APP=app \
    SERVER_BIND=0.0.0.0:5000
EXPOSE 5000

# Liveness only (no database): python's urllib, since the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2).status == 200 else 1)"]

CMD ["python", "-m", "serving"]
