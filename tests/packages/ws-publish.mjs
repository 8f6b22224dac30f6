// MQTT over WebSocket through the packaged nginx: publishes a valid event
// (expects PUBACK 0) and an invalid one (expects 0x87, Not authorized) with
// mqtt.js, and prints the valid event's orderId (its Kafka key).
//
//   node ws-publish.mjs ws://127.0.0.1:PORT/mqtt
import { connect, publish, orderPlaced } from '../node/lib.mjs';

const url = process.argv[2];
const c = await connect({ url });
const ok = orderPlaced();
const bad = orderPlaced({}, { lines: [{ sku: 'A', qty: 0 }] });
const rcOk = await publish(c, `events/order/${ok.data.orderId}`, JSON.stringify(ok));
const rcBad = await publish(c, `events/order/${bad.data.orderId}`, JSON.stringify(bad));
c.end();
if (rcOk !== 0 || rcBad !== 0x87) {
  console.error(`ws-publish: PUBACK reason codes ${rcOk} (valid, want 0) and ${rcBad} (invalid, want 135)`);
  process.exit(1);
}
console.log(ok.data.orderId);
