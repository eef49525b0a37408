# graphgate: gunicorn with draining uvicorn workers, pinned dependencies, non-root, read-only-able.
# Build: docker build -t graphgate .
# Run: docker run -p 8000:8000 -e REDIS_URL=... -e METRICS_TOKEN=... -e OPENAI_API_KEY=... graphgate
# A stop drains for GRACEFUL_TIMEOUT (QUEUE_TIMEOUT + REQUEST_TIMEOUT + 5 s, 45 by default): give
# it that long, e.g. `docker run --stop-timeout 60` (docker's own default kills after 10 s).

FROM python:3.11.7-slim-bookworm AS build
# DL3064 reads "TOKEN" in TIKTOKEN_CACHE_DIR as a secret; it is a folder of tokenizer files.
# hadolint ignore=DL3064
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIKTOKEN_CACHE_DIR=/opt/tiktoken
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.lock
# Tokenizer files are baked in at build time: token counting never downloads at run time.
RUN /opt/venv/bin/python -c "import tiktoken; [tiktoken.get_encoding(n) for n in ('o200k_base', 'cl100k_base')]"

FROM python:3.11.7-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin graphgate
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/tiktoken /opt/tiktoken
WORKDIR /app
COPY server.py gunicorn.conf.py langgraph.json ./
COPY graphs/ graphs/
COPY auth/ auth/
COPY api/ api/
COPY middleware/ middleware/
COPY serving/ serving/
# The app's bytecode is compiled here (pip compiled the venv's): at run time nothing writes it.
RUN python -m compileall -q /app
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TIKTOKEN_CACHE_DIR=/opt/tiktoken \
    PROMETHEUS_MULTIPROC_DIR=/tmp/graphgate-metrics \
    APP_ENV=production \
    PORT=8000
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "server:app"]
