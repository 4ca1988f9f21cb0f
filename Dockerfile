# syntax=docker/dockerfile:1
# One image for every Emporium process: `emporium api`, `emporium worker`, `emporium migrate`.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY cli ./cli
COPY commerce ./commerce
COPY core ./core
COPY models ./models
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
RUN python -m venv /venv && /venv/bin/pip install .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /app emporium
COPY --from=build /venv /venv
WORKDIR /app
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    EMPORIUM_API_HOST=0.0.0.0
USER emporium
EXPOSE 8000
CMD ["emporium", "api"]
