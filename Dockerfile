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
#
# The base image is pinned to a patch release (the release workflow may pin a digest with
# --build-arg BASE=python:...@sha256:...); rebuild for Debian and Python security updates.
ARG BASE=python:3.11.13-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
# Only the locked versions (lock/, written by scripts/lock.sh), each checked against its hash:
# the build backend into this stage, the dependencies into /install. The package itself, a
# directory with no hash, goes in alone (--no-deps), built by that locked backend.
COPY lock/runtime.txt lock/build.txt ./lock/
RUN pip install --no-cache-dir --require-hashes -r lock/build.txt \
    && pip install --no-cache-dir --require-hashes --prefix=/install -r lock/runtime.txt
COPY pyproject.toml README.md LICENSE ./
COPY exporter ./exporter
RUN pip install --no-cache-dir --no-deps --no-build-isolation --prefix=/install .

FROM ${BASE}
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="acme-http01-exporter" \
      org.opencontainers.image.description="Prometheus exporter that predicts Let's Encrypt HTTP-01 validation outcomes with the CA's own rules" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Debian's images ship a policy-rc.d that keeps the package from starting a daemon here.
# The packages are not pinned to versions: the base image pins the Debian release, and a
# rebuild must take that release's security updates (Unbound's above all).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends unbound dns-root-data \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
USER 65534:65534
EXPOSE 9469
ENTRYPOINT ["acme-http01-exporter"]
CMD ["--config.file=/etc/acme-http01-exporter/config.yml"]
