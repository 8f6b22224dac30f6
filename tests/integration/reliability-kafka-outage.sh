#!/usr/bin/env bash
# Apache Kafka down (stopped cleanly) for 30 s while clients publish 1,000
# msg/s at QoS 1 with the journal on, then restarted from its log dir:
# afterwards Kafka holds every acknowledged event exactly once, in per-key
# order, with no duplicate. (On librdkafka's mock this test needed an
# allowance for the copies of the requests in flight as it went down: the
# mock checks no idempotent producer sequence.)
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/reliability-real-kafka.inc"
# Under ASan+UBSan (make test's second pass) a shorter outage, for the
# run's time: the same paths, checked by the sanitizers; the normal pass
# keeps the full one.
outage=30
stack_is_san && outage=12
real_kafka_outage kafka_stop kafka_restart "${OUTAGE_SECONDS:-$outage}"
