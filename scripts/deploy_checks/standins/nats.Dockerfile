# A stand-in for the public nats:2.9 image, for the compose check only: Debian 12's nats-server,
# taking the same command line (the official image's entrypoint is nats-server).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 6222 8222
ENTRYPOINT ["nats-server"]
