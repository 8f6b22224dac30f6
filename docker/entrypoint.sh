#!/bin/sh
# Runs Mosquitto (plugin) and nginx (module) in one container; either exiting
# stops the container so that the orchestrator restarts it.
set -e
sed -e "s|@KAFKA_BOOTSTRAP@|${KAFKA_BOOTSTRAP_SERVERS}|g" \
    /etc/tributary/docker/nginx.conf.in > /etc/nginx/nginx.conf
mosquitto -c /etc/tributary/docker/mosquitto.conf &
mpid=$!
nginx -g 'daemon off;' &
npid=$!
trap 'kill -TERM $mpid $npid 2>/dev/null' TERM INT
while kill -0 $mpid 2>/dev/null && kill -0 $npid 2>/dev/null; do sleep 1; done
kill -TERM $mpid $npid 2>/dev/null || true
wait
exit 1
