# syntax=docker/dockerfile:1
# The operator's image for those who build with Docker (BuildKit):
#
#   docker build -t iam-operator:0.1.0 .
#
# scripts/image builds the same image without a daemon (no Docker runs where
# this project is tested) and the test command unpacks and runs that one:
# both run e2e/image/assemble-rootfs over the same Debian packages and the
# same release binary, so the two images have the same files in the same two
# layers, the same entrypoint and the same user. A change here needs the same
# change there.

# Debian bookworm throughout: the runtime's glibc must be at least the one the
# binary was linked against, and taking both from the same release keeps them
# equal.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# The runtime's packages, fetched and never installed: only a few of their
# files go into the image.
FROM ${DEBIAN_IMAGE} AS debs
RUN apt-get update \
 && mkdir /debs && cd /debs \
 && base=$(apt-cache depends libgcc-s1 | sed -n 's/^ *Depends: \(gcc-[0-9]*-base\).*/\1/p' | head -n1) \
 && chown _apt /debs \
 && apt-get download libc6 libgcc-s1 ca-certificates $base

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# aws-lc-sys builds with the C compiler the image has (no cmake on x86-64 or
# arm64 Linux). The caches keep crates and compiled dependencies between
# builds; the binary is copied out because a cache mount is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin iam-operator \
 && cp target/release/iam-operator /iam-operator
COPY --from=debs /debs /debs
RUN e2e/image/assemble-rootfs /debs /iam-operator /rootfs

# Nothing but the two layers: no shell, no package manager.
FROM scratch
COPY --from=build /rootfs/runtime/ /
COPY --from=build /rootfs/app/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/iam-operator"]
LABEL org.opencontainers.image.title="iam-operator" \
      org.opencontainers.image.description="Kubernetes operator reconciling AWS IAM roles for IRSA and EKS Pod Identity" \
      org.opencontainers.image.licenses="Apache-2.0"
