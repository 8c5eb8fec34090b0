# syntax=docker/dockerfile:1
# driftd container image. From the repository root:
#   docker build -t driftd:0.1.0 .
# Build stage: Rust and PyTorch's libtorch (from the torch pip wheel, LIBTORCH=site-packages/torch).
# Runtime stage: debian:bookworm-slim with the driftd binary and only the shared libraries it
# loads that the base image lacks (found with ldd by scripts/validators/collect_libs.sh),
# running as a non-root user. No container engine runs in this project's CI: what
# scripts/validate_deploy.sh checks instead (and what it cannot) is in deploy/README.md.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------- build
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# CPU-only PyTorch by default: libtorch is a few hundred MB instead of several GB of CUDA
# libraries. For a CUDA image pass e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
# (and read "Container image" in deploy/README.md: CUDA libraries loaded with dlopen are not seen by ldd).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
# bookworm's python3 is 3.11. tch links libtorch from here and embeds it as the rpath (build.rs);
# at run time the libraries come from /opt/driftd/libtorch/lib through LD_LIBRARY_PATH.
ENV LIBTORCH=/opt/venv/lib/python3.11/site-packages/torch \
    LIBTORCH_USE_PYTORCH=0 \
    SQLX_OFFLINE=true \
    CARGO_TARGET_DIR=/target

# No .git in the build context: pass the revision (`--build-arg DRIFTD_GIT_REVISION=$(git
# rev-parse --short=12 HEAD)`) for --version and driftd_build_info; default "unknown".
ARG DRIFTD_GIT_REVISION=unknown
ENV DRIFTD_GIT_REVISION=${DRIFTD_GIT_REVISION}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# sql/migrations is embedded by sqlx::migrate!; benches, examples and tests only so that
# every target the manifest may name exists (cargo checks them when it reads Cargo.toml).
COPY sql ./sql
COPY benches ./benches
COPY examples ./examples
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/target \
    cargo build --release --locked --bin driftd \
 && install -D -m 0755 /target/release/driftd /out/usr/local/bin/driftd

# Only the libraries the binary loads (libtorch, libtorch_cpu, libc10, libgomp, ...).
COPY scripts/validators/collect_libs.sh /usr/local/bin/collect-libs
RUN sh /usr/local/bin/collect-libs /out/usr/local/bin/driftd "$LIBTORCH/lib" /out/opt/driftd/libtorch/lib \
 && LD_LIBRARY_PATH=/out/opt/driftd/libtorch/lib /out/usr/local/bin/driftd --help > /dev/null

# ---------------------------------------------------------------------------- runtime
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN groupadd --system --gid 65532 driftd \
 && useradd --system --uid 65532 --gid driftd --home-dir /var/lib/driftd --no-create-home \
      --shell /usr/sbin/nologin driftd \
 && install -d -o driftd -g driftd -m 0700 /var/lib/driftd \
 && install -d -m 0755 /etc/driftd
COPY --from=build /out/ /
ENV LD_LIBRARY_PATH=/opt/driftd/libtorch/lib \
    HOME=/var/lib/driftd
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /var/lib/driftd
EXPOSE 9187
# The daemon handles SIGTERM itself (training grace period, state save): no init needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/driftd"]
CMD ["run", "--config", "/etc/driftd/driftd.toml"]
