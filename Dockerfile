# The voicemail server as a container: a static binary (prompts embedded)
# on an empty base, run as a non-root user. No shell at run time.
#   docker build -t voicemail .            (or: buildah bud -t voicemail .)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
# cgo for SQLite, linked statically; the time zone database is embedded
# (mailbox time zones) and the resolver is Go's own.
RUN CGO_ENABLED=1 go build -trimpath -tags 'osusergo netgo timetzdata sqlite_omit_load_extension' \
      -ldflags "-s -w -linkmode external -extldflags -static -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/voicemail ./cmd/voicemail \
 && mkdir -p /out/state

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 --chmod=0750 /out/state /var/lib/voicemail
COPY --from=build /out/voicemail /voicemail
USER 65532:65532
ENV VOICEMAIL_DATA_DIR=/var/lib/voicemail \
    VOICEMAIL_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 5060/udp 5060/tcp 8080/tcp
ENTRYPOINT ["/voicemail"]
CMD ["serve"]
