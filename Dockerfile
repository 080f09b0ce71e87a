# Builds attestd and attestctl. Used by compose.yaml (the production shape).
# attestd is built without -tags embedded, as make build does: it links no
# embedded server and needs TAT_NATS_URL and TAT_MONGODB_URI.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/attestd ./cmd/attestd && \
    CGO_ENABLED=0 go build -trimpath -o /out/attestctl ./cmd/attestctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/attestd /out/attestctl /usr/local/bin/
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/attestd"]
