#!/usr/bin/env bash
# 10,000 mixed events -> exactly the valid ones in Kafka, in per-key order.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:3
start_mosquitto
cd "$ROOT" && node --test tests/node/ingest-bulk.mjs || fail "bulk ingest failed"
