# entitle: a FROM scratch image that holds only the static /entitle binary.
#
#   docker build -t entitle:0.1.0 .
#   docker buildx build --platform linux/arm64 -t entitle:0.1.0-arm64 .   # aarch64 (Graviton)
#
# The build stage runs on the target platform (under emulation for a foreign one) and picks the
# musl target from TARGETARCH: amd64 -> x86_64-unknown-linux-musl, arm64 ->
# aarch64-unknown-linux-musl. Only x86_64 is built and tested in this repository's CI; the arm64
# path is the same commands for the other target and is not tested here.
#
# Vendors copy /entitle into their own image: see deploy/docker/Dockerfile.vendor.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
# Set by BuildKit/buildah from --platform; empty with the legacy builder (then amd64).
ARG TARGETARCH
WORKDIR /src
COPY . .
# ring's C parts are compiled with the image's gcc for the musl target (no musl-tools needed).
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}: use linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac; \
    target="${arch}-unknown-linux-musl"; \
    rustup target add "${target}"; \
    rustup component add rust-src; \
    env "CC_${arch}_unknown_linux_musl=gcc" scripts/build-static.sh "${target}"; \
    cp "target/dist/${target}/entitle" /entitle; \
    /entitle --version

# The runtime image. tests/deploy/podman.sh builds this exact stage (everything below the next
# line, with the COPY taken from a prebuilt binary) and runs it read-only, as 65532, with all
# capabilities dropped.
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="entitle" \
      org.opencontainers.image.description="AWS Marketplace RegisterUsage entitlement check and PID 1 supervisor for paid container products" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /entitle /entitle
USER 65532:65532
ENTRYPOINT ["/entitle"]
CMD ["check"]
