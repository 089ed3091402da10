# acme-http01-exporter: a small image that runs as a non-root user and writes nothing to
# its root filesystem (run it with readOnlyRootFilesystem). Health is probed by Kubernetes
# on /-/healthy and /-/ready, so there is no HEALTHCHECK.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
USER 65534:65534
EXPOSE 9469
ENTRYPOINT ["acme-http01-exporter"]
CMD ["--config.file=/etc/acme-http01-exporter/config.yml"]
