# Tributary: Mosquitto with the plugin and nginx with the module, on Debian 12,
# configured for your Kafka cluster by environment variables:
#
#   docker build -t tributary .
#   docker run -p 1883:1883 -p 8080:8080 \
#     -e KAFKA_BOOTSTRAP_SERVERS=broker1:9092,broker2:9092 \
#     [-e KAFKA_SECURITY_PROTOCOL=SASL_SSL -e KAFKA_SASL_MECHANISM=PLAIN \
#      -e KAFKA_SASL_USERNAME=... -e KAFKA_SASL_PASSWORD=...] \
#     [-e MQTT_PORT=1883 -e HTTP_PORT=8080] [-v tributary-data:/var/lib/tributary] \
#     tributary
#
# Both processes are stateless apart from Kafka and the plugin's journal in
# /var/lib/tributary (events accepted but not yet confirmed by Kafka, produced
# again at the next start: keep it on a volume): scale out by running more
# containers against one cluster. `docker stop` lets the plugin flush for up
# to 5 s (docker/tributary.json: shutdown.flush_timeout_ms).
#
# Behind a TLS-inspecting proxy, give npm the proxy's CA certificate (PEM
# text; the build stage only, not in the image):
#   docker build --build-arg NPM_EXTRA_CA="$(cat proxy-ca.pem)" -t tributary .
# tools/docker-smoke.sh builds the image and tests it against the dev Kafka.

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates mosquitto-dev libmosquitto-dev \
      nginx-dev librdkafka-dev libjansson-dev libpcre2-dev libssl-dev libcurl4-openssl-dev \
      nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The npm packages first (the web app's mqtt.js bundle), so that a source
# change does not download them again.
COPY package.json package-lock.json ./
ARG NPM_EXTRA_CA=
RUN if [ -n "$NPM_EXTRA_CA" ]; then \
      printf '%s\n' "$NPM_EXTRA_CA" >/tmp/npm-ca.pem && export NODE_EXTRA_CA_CERTS=/tmp/npm-ca.pem; \
    fi; \
    npm ci --omit=dev --no-audit --no-fund --loglevel=error && rm -f /tmp/npm-ca.pem
COPY . .
RUN make -j"$(nproc)" build/mosquitto_tributary.so build/ngx_http_tributary_module.so web

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      mosquitto nginx librdkafka1 libjansson4 libpcre2-8-0 libssl3 libcurl4 ca-certificates tini \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/mosquitto_tributary.so /usr/lib/tributary/
COPY --from=build /src/build/ngx_http_tributary_module.so /usr/lib/nginx/modules/
COPY --from=build /src/build/web /var/www/tributary
COPY schemas /etc/tributary/schemas
COPY conf/nginx-brotli.conf /etc/tributary/
COPY docker/ /etc/tributary/docker/
RUN mkdir -p /var/lib/tributary/journal /var/lib/mosquitto \
    && chown -R mosquitto: /var/lib/tributary /var/lib/mosquitto
ENV KAFKA_BOOTSTRAP_SERVERS=kafka:9092 KAFKA_SECURITY_PROTOCOL=PLAINTEXT \
    KAFKA_SASL_MECHANISM=PLAIN KAFKA_SASL_USERNAME= KAFKA_SASL_PASSWORD= \
    MQTT_PORT=1883 HTTP_PORT=8080 JOURNAL_SYNC=interval
EXPOSE 1883 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/etc/tributary/docker/entrypoint.sh"]
