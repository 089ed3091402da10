# acme-http01-exporter: a small image that runs as a non-root user and writes nothing to
# its root filesystem (run it with readOnlyRootFilesystem). Health is probed by Kubernetes
# on /-/healthy and /-/ready, so there is no HEALTHCHECK.
#
# One image, two containers: it also holds Unbound (Debian's package, with dns-root-data's
# root trust anchor in /usr/share/dns/root.key), the recursive validating resolver that the
# Helm chart runs beside the exporter with
#   command: ["/usr/sbin/unbound", "-d", "-c", "/etc/unbound/unbound.conf"]
# Its config comes from a mounted file; run as a non-root user it needs `username: ""`,
# `chroot: ""` and a writable directory for its pidfile (an emptyDir).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Debian's images ship a policy-rc.d that keeps the package from starting a daemon here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends unbound dns-root-data \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
USER 65534:65534
EXPOSE 9469
ENTRYPOINT ["acme-http01-exporter"]
CMD ["--config.file=/etc/acme-http01-exporter/config.yml"]
