# The API image: `docker compose up` runs it next to postgres:15 (see docker-compose.yml).
# Every dependency ships manylinux wheels, so no compiler is needed in either stage.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY commands ./commands
COPY handlers ./handlers
COPY queries ./queries
COPY infrastructure ./infrastructure
COPY web ./web
COPY cli ./cli
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin leads
COPY --from=build /opt/venv /opt/venv
COPY examples /app/examples
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER leads
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "uvicorn", "web.app:app", "--host", "0.0.0.0", "--port", "8000"]
