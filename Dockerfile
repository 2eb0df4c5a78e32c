# The corebank binary in a small image. Build: docker build -t corebank .
# Run a replica (data in a volume, certificates mounted read-only):
#   docker run -d --name corebank-0001-1 -p 8080:8080 -p 9180:9180 \
#     -v corebank-0001-1:/var/lib/corebank -v $PWD/certs:/etc/corebank/certs:ro \
#     corebank node --branch 0001 --data-dir /var/lib/corebank/0001 \
#       --listen 0.0.0.0:8080 --admin 0.0.0.0:9180 --advertise HOST:8080 \
#       --node-id 1 --member 1=HOST1:8080,2=HOST2:8080,3=HOST3:8080 \
#       --tls-cert /etc/corebank/certs/node1.pem --tls-key /etc/corebank/certs/node1-key.pem \
#       --tls-ca /etc/corebank/certs/ca.pem
# The demo (everything in one process): docker run --rm corebank demo --seconds 30

FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin corebank

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/corebank --shell /usr/sbin/nologin corebank \
    && mkdir -p /var/lib/corebank && chown corebank:corebank /var/lib/corebank
COPY --from=build /src/target/release/corebank /usr/local/bin/corebank
USER corebank
VOLUME ["/var/lib/corebank"]
EXPOSE 8080 9180
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/corebank"]
CMD ["--help"]
