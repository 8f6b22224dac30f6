#!/usr/bin/env bash
# Apache Kafka hung (its JVM stopped with SIGSTOP) for 15 s, longer than the
# producer's request timeout (5 s here), while clients publish 1,000 msg/s
# at QoS 1 with the journal on: the producer times out the requests in
# flight and sends them again, and once resumed the broker reads both the
# originals and the retries. Afterwards Kafka holds every acknowledged event
# exactly once (the broker drops the retries by their idempotent sequence:
# with enable.idempotence=false this test finds duplicates), in per-key
# order.
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/reliability-real-kafka.inc"
# Under ASan+UBSan (make test's second pass) a shorter outage, for the
# run's time: the same paths, checked by the sanitizers; the normal pass
# keeps the full one.
outage=15
stack_is_san && outage=10
real_kafka_outage kafka_pause kafka_resume "${OUTAGE_SECONDS:-$outage}"
