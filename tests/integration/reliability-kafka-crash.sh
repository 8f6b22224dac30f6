#!/usr/bin/env bash
# Apache Kafka crashed (SIGKILL) and restarted 10 s later from its log dir,
# while clients publish 1,000 msg/s at QoS 1 with the journal on: afterwards
# Kafka holds every acknowledged event exactly once, in per-key order (no
# duplicate from the requests in flight at the crash: the idempotent
# producer resends them with the same sequence).
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/reliability-real-kafka.inc"
real_kafka_outage kafka_kill kafka_restart "${OUTAGE_SECONDS:-10}"
