# syntax=docker/dockerfile:1
# idplan's container image: a static musl binary, built with the release profile `dist`, on
# distroless/static (CA certificates for the cloud APIs, /etc/passwd with the nonroot user,
# no shell, no package manager). It runs as a non-root user and writes only to its working
# directory, so `docker run --read-only` works:
#   docker run --rm --read-only -v "$PWD:/work" -u "$(id -u):$(id -g)" IMAGE plan
# The release workflow builds it natively for linux/amd64 and linux/arm64 (one runner each);
# `docker build .` builds it for this machine.

FROM rust:1.95-alpine AS build
# Alpine's toolchain targets musl natively and links statically; aws-lc-sys (rustls' crypto)
# compiles with its gcc and needs the kernel headers (linux/random.h), which Debian's musl-gcc
# cannot find: hence Alpine, for the image and for the release archives' Linux binaries alike.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev linux-headers cmake make
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs README.md ./
COPY src ./src
COPY benches ./benches
# No .git in the build context: the release workflow passes the commit for `idplan --version`.
ARG IDPLAN_COMMIT=unknown
ENV IDPLAN_COMMIT=${IDPLAN_COMMIT}
RUN cargo build --locked --profile dist \
    && install -D -m 0755 target/dist/idplan /out/idplan \
    && /out/idplan --version

# The bare binary, for the release archives: `docker buildx build --target binary --output
# type=local,dest=out .` leaves out/idplan.
FROM scratch AS binary
COPY --from=build /out/idplan /idplan

# The third-party licence notices: none in a plain `docker build`; the release workflow passes
# the generated THIRD-PARTY-LICENSES.md with `--build-context notices=DIR`, which replaces
# this empty stage.
FROM scratch AS notices

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/idplan /usr/local/bin/idplan
COPY LICENSE /usr/share/doc/idplan/LICENSE
COPY --from=notices / /usr/share/doc/idplan/
# The nonroot user of distroless (65532), by number so that runtimes can check it is not root.
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/idplan"]
CMD ["--help"]
