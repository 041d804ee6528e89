# The API image: `docker compose up --build` runs it next to postgres:15 (docker-compose.yml).
# Dependencies come from uv.lock (`uv sync --frozen --no-dev`), the project's own code in a
# later layer so that a code change does not reinstall them. Every dependency ships manylinux
# wheels: no compiler in either stage.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY domain ./domain
COPY commands ./commands
COPY handlers ./handlers
COPY queries ./queries
COPY infrastructure ./infrastructure
COPY web ./web
COPY cli ./cli
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin leads
COPY --from=build /app/.venv /app/.venv
COPY examples /app/examples
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER leads
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "uvicorn", "web.app:app", "--host", "0.0.0.0", "--port", "8000"]
