// Raw WebSocket client for the relay tests: a real TCP socket, the HTTP
// upgrade written by hand, frames encoded and decoded here, so that tests can
// send what no WebSocket library would (unmasked, oversized, fragmented,
// garbage, bad close codes) and see exactly what nginx answers.
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import mqttPacket from 'mqtt-packet';

export const httpPort = Number(process.env.HTTP_PORT || 28080);
export const mqttPort = Number(process.env.MQTT_PORT || 21883);
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const acceptKey = (key) => createHash('sha1').update(key + GUID).digest('base64');

// Sends an HTTP request; resolves with {status, headers, conn} once the
// response header is in (conn keeps the socket and the bytes after it).
export function request({ path = '/mqtt', method = 'GET', headers, extraHeaders = {}, raw, port = httpPort, extra } = {}) {
  const key = randomBytes(16).toString('base64');
  const h = headers || {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Protocol': 'mqtt',
    ...extraHeaders,
  };
  const text = raw || `${method} ${path} HTTP/1.1\r\n` +
    Object.entries(h).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, statusLine: lines[0], headers, key: h['Sec-WebSocket-Key'], conn: new Conn(sock, buf.subarray(end + 4)) });
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(extra ? Buffer.concat([Buffer.from(text, 'latin1'), extra]) : Buffer.from(text, 'latin1'));
  });
}

// Opens a WebSocket and checks the 101.
export async function open(opts = {}) {
  const r = await request(opts);
  if (r.status !== 101) throw new Error(`expected 101, got ${r.statusLine}`);
  if (r.headers['sec-websocket-accept'] !== acceptKey(r.key)) throw new Error('bad Sec-WebSocket-Accept');
  return r.conn;
}

// One frame. Client frames are masked unless mask: false.
export function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, len } = {}) {
  payload = Buffer.from(payload);
  const n = len ?? payload.length;
  let hdr;
  if (n < 126) {
    hdr = Buffer.from([0, n]);
  } else if (n < 65536) {
    hdr = Buffer.alloc(4); hdr[1] = 126; hdr.writeUInt16BE(n, 2);
  } else {
    hdr = Buffer.alloc(10); hdr[1] = 127; hdr.writeBigUInt64BE(BigInt(n), 2);
  }
  hdr[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (!mask) return Buffer.concat([hdr, payload]);
  hdr[1] |= 0x80;
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([hdr, key, body]);
}

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

// A connection after the handshake: decodes server frames as they come.
export class Conn {
  constructor(sock, rest) {
    this.sock = sock;
    this.buf = Buffer.from(rest);
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    this.endWaiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.decode(); });
    sock.on('close', () => { this.ended = true; this.wake(); this.endWaiters.forEach((f) => f()); });
    sock.on('error', () => {});
    this.decode();
  }

  decode() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      if (b[1] & 0x80) throw new Error('server sent a masked frame');
      let n = b[1] & 0x7f, off = 2;
      if (n === 126) { if (b.length < 4) break; n = b.readUInt16BE(2); off = 4; }
      else if (n === 127) { if (b.length < 10) break; n = Number(b.readBigUInt64BE(2)); off = 10; }
      if (b.length < off + n) break;
      this.frames.push({ fin: !!(b[0] & 0x80), rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, payload: b.subarray(off, off + n) });
      this.buf = b.subarray(off + n);
    }
    this.wake();
  }

  wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  // Next frame (or null if the connection ended first).
  async next(timeoutMs = 5000) {
    const end = Date.now() + timeoutMs;
    while (!this.frames.length) {
      if (this.ended) return null;
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
    return this.frames.shift();
  }

  // Skips data frames until a close frame; returns {code, reason} (code
  // undefined for an empty close, null if the TCP connection ended first).
  async closeFrame(timeoutMs = 5000) {
    for (;;) {
      const f = await this.next(timeoutMs);
      if (f === null) return null;
      if (f.opcode === OP.CLOSE) {
        return f.payload.length >= 2
          ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() }
          : { code: undefined, reason: '' };
      }
    }
  }

  // Resolves when the server closed the TCP connection.
  closed(timeoutMs = 5000) {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('TCP connection still open')), timeoutMs);
      this.endWaiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }

  send(buf) { this.sock.write(buf); }
  sendBinary(payload) { this.send(frame(OP.BINARY, payload)); }
  destroy() { this.sock.destroy(); }

  // MQTT packets carried by the binary frames received from now on.
  mqtt(timeoutMs = 5000) { return new MqttReader(this, timeoutMs); }
}

export class MqttReader {
  constructor(conn, timeoutMs) {
    this.conn = conn;
    this.timeoutMs = timeoutMs;
    this.packets = [];
    this.parser = mqttPacket.parser({ protocolVersion: 5 });
    this.parser.on('packet', (p) => this.packets.push(p));
    this.parser.on('error', (e) => { this.error = e; });
  }

  async packet() {
    while (!this.packets.length) {
      const f = await this.conn.next(this.timeoutMs);
      if (f === null) throw new Error('connection ended before an MQTT packet');
      if (f.opcode === OP.CLOSE) throw new Error(`close frame ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : ''} before an MQTT packet`);
      if (f.opcode !== OP.BINARY && f.opcode !== OP.CONT) throw new Error(`unexpected opcode ${f.opcode}`);
      this.parser.parse(f.payload);
      if (this.error) throw this.error;
    }
    return this.packets.shift();
  }
}

export const mqttBytes = (p, protocolVersion = 5) => mqttPacket.generate(p, { protocolVersion });
export const connectPacket = (clientId, protocolVersion = 5, extra = {}) =>
  mqttBytes({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: true, clientId, keepalive: 60, ...extra }, protocolVersion);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
