# Tributary: Mosquitto with the plugin and nginx with the module, on Debian 12,
# configured for your Kafka cluster by environment variables:
#
#   docker build -t tributary .
#   docker run -p 1883:1883 -p 8080:8080 \
#     -e KAFKA_BOOTSTRAP_SERVERS=broker1:9092,broker2:9092 \
#     [-e KAFKA_SECURITY_PROTOCOL=SASL_SSL -e KAFKA_SASL_MECHANISM=PLAIN \
#      -e KAFKA_SASL_USERNAME=... -e KAFKA_SASL_PASSWORD=...] tributary
#
# Both processes are stateless apart from Kafka (and the plugin's journal in
# /var/lib/tributary): scale out by running more containers against one cluster.
FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates mosquitto-dev libmosquitto-dev \
      nginx-dev librdkafka-dev libjansson-dev libpcre2-dev libssl-dev libcurl4-openssl-dev \
      nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund --omit=dev 2>/dev/null || npm ci --no-audit --no-fund
RUN make -j"$(nproc)" build/mosquitto_tributary.so build/ngx_http_tributary_module.so web

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      mosquitto nginx librdkafka1 libjansson4 libpcre2-8-0 libssl3 ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/mosquitto_tributary.so /usr/lib/tributary/
COPY --from=build /src/build/ngx_http_tributary_module.so /usr/lib/nginx/modules/
COPY --from=build /src/build/web /var/www/tributary
COPY schemas /etc/tributary/schemas
COPY docker/ /etc/tributary/docker/
RUN mkdir -p /var/lib/tributary /var/lib/mosquitto && chown mosquitto: /var/lib/tributary /var/lib/mosquitto
ENV KAFKA_BOOTSTRAP_SERVERS=kafka:9092 KAFKA_SECURITY_PROTOCOL=PLAINTEXT \
    KAFKA_SASL_MECHANISM=PLAIN KAFKA_SASL_USERNAME= KAFKA_SASL_PASSWORD=
EXPOSE 1883 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/etc/tributary/docker/entrypoint.sh"]
