# syntax=docker/dockerfile:1
#
# canary-engine image: `canary serve` on distroless, non-root (UID/GID 65532, as the Helm chart
# expects), no shell at runtime.
#
#   docker build -t canary-engine:0.1.0 .
#   docker run --rm -p 8080:8080 -e CANARY_PROMETHEUS_URL=http://prometheus:9090 canary-engine:0.1.0
#
# Pin the base images by digest in your registry mirror (`FROM image:tag@sha256:…`) for
# reproducible builds; the tags below are the versions this file was written for.

# ---- build: release binary with OpenTelemetry export --------------------------------------
FROM docker.io/library/rust:1.95.0-bookworm AS build
WORKDIR /src
# Function names stay for backtraces; DWARF (profile.release debug = 1) is not shipped.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never
# Only what the build reads (see .dockerignore): manifests, sources, and the files that
# src/ embeds with include_str! (analysis-templates/, examples/, schemas/).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY analysis-templates ./analysis-templates
COPY examples ./examples
COPY schemas ./schemas
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features otlp --bin canary \
    && install -D -m 0755 target/release/canary /out/canary

# ---- runtime: glibc + CA certificates, no shell, no package manager ------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="canary-engine" \
      org.opencontainers.image.description="Statistical canary analysis for Argo Rollouts, Istio and Prometheus (canary serve)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /out/canary /usr/local/bin/canary
# The bundled Judge specs and AnalysisTemplates (the chart mounts its ConfigMap over this).
COPY analysis-templates/*.yaml /etc/canary/judges/
ENV CANARY_JUDGES=/etc/canary/judges \
    CANARY_LISTEN=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/canary"]
CMD ["serve"]
