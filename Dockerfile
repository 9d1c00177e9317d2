# syntax=docker/dockerfile:1
# kidsafe-dns container image.
#   docker build -t kidsafe-dns .
#   docker run -d --name kidsafe-dns -p 53:53/udp -p 53:53/tcp \
#     -v kidsafe-dns-state:/var/lib/kidsafe-dns kidsafe-dns
# Config: /etc/kidsafe-dns/kidsafe-dns.toml (deploy/kidsafe-dns.toml, with the sample lists
# in /etc/kidsafe-dns/blocklists); mount your own directory over /etc/kidsafe-dns.
# State (compiled list, feed downloads): the volume /var/lib/kidsafe-dns.

# --- Build ---------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cargo.lock is honoured as committed (--locked). The cache mounts keep crates and
# build artefacts between builds; the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/kidsafe-dns /usr/local/bin/kidsafe-dns

# --- Runtime -------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: HTTPS list feeds (lists.source url = "https://...") and tls:// upstreams.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-log-init --uid 10053 --user-group \
       --home-dir /var/lib/kidsafe-dns --shell /usr/sbin/nologin kidsafe \
    && install -d -o kidsafe -g kidsafe -m 0750 /var/lib/kidsafe-dns
COPY --from=build /usr/local/bin/kidsafe-dns /usr/local/bin/kidsafe-dns
COPY deploy/docker/healthcheck.sh /usr/local/bin/kidsafe-dns-healthcheck
COPY deploy/kidsafe-dns.toml /etc/kidsafe-dns/kidsafe-dns.toml
COPY blocklists /etc/kidsafe-dns/blocklists
# Fail the build on a config the binary rejects.
RUN kidsafe-dns check-config --config /etc/kidsafe-dns/kidsafe-dns.toml

# Logs go to stderr (docker logs): plain text, no colour codes.
ENV NO_COLOR=1
# Not root: the `kidsafe` user, by number so runAsNonRoot checks can see it. Port 53 still
# binds: Docker (20.10+) sets net.ipv4.ip_unprivileged_port_start=0 in a container's own
# network namespace. With --network host the host's sysctl applies.
USER 10053:10053
WORKDIR /var/lib/kidsafe-dns
VOLUME /var/lib/kidsafe-dns
# DNS over UDP and TCP; 853 (DoT), 443 (DoH) and 9153 (admin API, metrics) when enabled
# in the config.
EXPOSE 53/udp 53/tcp 853/tcp 443/tcp 9153/tcp
# SIGTERM drains in-flight queries for server.shutdown_grace_ms (5 s in the shipped
# config): keep `docker stop --time` (default 10 s) above it.
STOPSIGNAL SIGTERM
# A DNS query over UDP and over TCP to 127.0.0.1:53; any answer (even SERVFAIL with the
# upstream down) is healthy. See deploy/docker/healthcheck.sh.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/kidsafe-dns-healthcheck"]
ENTRYPOINT ["/usr/local/bin/kidsafe-dns"]
CMD ["serve", "--config", "/etc/kidsafe-dns/kidsafe-dns.toml"]
