#!/usr/bin/env node
'use strict';
// The Clougistic simulator: the Demand API's enqueue route as the vendor documents it
// (create or update by reference), with everything it received open to inspection under
// /_sim/ and faults to inject. One process, state in memory; node's built-in modules only.
// Usage and routes: README.md, "Simulators"; `node t/sim/clougistic.js --help`.

const http = require('http');
const https = require('https');
const fs = require('fs');
const { performance } = require('perf_hooks');
const { Faults } = require('./faults');

const USAGE = `usage: clougistic.js [--port N] [--host ADDR] [--tls-port N --cert FILE --key FILE]
                     [--http2] [--entity ENTITY:KEY]... [--no-street-full] [--log-max N]
                     [--keepalive-ms N] [--exit-with PID] [--quiet]
  --entity ENTITY:KEY   an entity id and the access key accepted for it (repeatable); also
                        CLOUGISTIC_SIM_ENTITIES="E1:K1,E2:K2" (keeps keys off the command line)
  --port / --tls-port   HTTP and HTTPS listeners (at least one; both share one state)
  --http2               the HTTPS listener offers h2 besides http/1.1 (ALPN)
  --no-street-full      refuse shipping_street_full in place of street + housenumber
  --log-max N           keep the last N enqueue calls in /_sim/enqueued (default 100000)
  --exit-with PID       exit when process PID is gone`;

function parseArgs(argv) {
  const o = { host: '127.0.0.1', entities: new Map(), streetFull: true, logMax: 100000,
    keepAliveMs: 5000, http2: false, quiet: false };
  const need = (i) => { if (i + 1 >= argv.length) die(`${argv[i]} needs a value`); return argv[i + 1]; };
  const int = (s, name) => { if (!/^\d+$/.test(s)) die(`${name} must be a number, got "${s}"`); return Number(s); };
  const addEntity = (s) => {
    const i = s.indexOf(':');
    if (i <= 0 || i === s.length - 1) die('an entity is given as ENTITY_ID:ACCESS_KEY');
    const entity = s.slice(0, i);
    const key = s.slice(i + 1);
    if (!o.entities.has(entity)) o.entities.set(entity, new Set());
    o.entities.get(entity).add(key);
  };
  for (const s of (process.env.CLOUGISTIC_SIM_ENTITIES || '').split(',')) if (s.trim()) addEntity(s.trim());
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i), a); i++; break;
      case '--host': o.host = need(i); i++; break;
      case '--tls-port': o.tlsPort = int(need(i), a); i++; break;
      case '--cert': o.cert = need(i); i++; break;
      case '--key': o.key = need(i); i++; break;
      case '--http2': o.http2 = true; break;
      case '--entity': addEntity(need(i)); i++; break;
      case '--no-street-full': o.streetFull = false; break;
      case '--log-max': o.logMax = int(need(i), a); i++; break;
      case '--keepalive-ms': o.keepAliveMs = int(need(i), a); i++; break;
      case '--exit-with': o.exitWith = int(need(i), a); i++; break;
      case '--quiet': o.quiet = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: die(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.port === undefined && o.tlsPort === undefined) die('give --port and/or --tls-port');
  if (o.tlsPort !== undefined && (!o.cert || !o.key)) die('--tls-port needs --cert and --key');
  if (o.entities.size === 0) die('no entity configured (--entity ENTITY:KEY or CLOUGISTIC_SIM_ENTITIES)');
  return o;
}

function die(msg) { process.stderr.write(`clougistic-sim: ${msg}\n`); process.exit(2); }
function log(msg) { process.stderr.write(`${new Date().toISOString()} clougistic-sim: ${msg}\n`); }

const opt = parseArgs(process.argv.slice(2));

// What the Demand document marks required in the payload. shipping_street_full (used by the
// document's own example) stands in for street + housenumber unless --no-street-full.
const REQUIRED = ['reference', 'source_id', 'type', 'currency', 'shipping_firstname',
  'shipping_lastname', 'shipping_street', 'shipping_housenumber', 'shipping_postcode',
  'shipping_city', 'shipping_country'];

// ---- state -------------------------------------------------------------------------------
const S = {
  log: [],            // enqueue calls: { seq, conn, at, status, fault, ref, src, ent, keyOk, raw, http, rawHeaders }
  logDropped: 0,      // entries beyond --log-max, oldest first
  seq: 0,
  orders: new Map(),  // entity \0 reference -> { id, entity, reference, raw, versions }
  nextId: 1,
  requests: 0,
  enqueueRequests: 0,
  connections: 0,
  started: Date.now(),
};
let connSeq = 0;      // labels connections in the log; never reset, so labels stay unique
const sockets = new Set();
const faults = new Faults();

function resetState() {
  S.log = []; S.logDropped = 0; S.seq = 0; S.orders = new Map(); S.nextId = 1;
  S.requests = 0; S.enqueueRequests = 0; S.connections = 0; S.started = Date.now();
}

// ---- answers -----------------------------------------------------------------------------
function send(res, status, body, headers) {
  if (res.destroyed || res.writableEnded) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const h = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) };
  if (headers) Object.assign(h, headers);
  res.writeHead(status, h);
  res.end(text);
}

function problem(res, status, error, message, field, headers) {
  const b = { success: false, error, message };
  if (field) b.field = field;
  send(res, status, b, headers);
}

function readBody(req, limit, cb) {
  const chunks = [];
  let len = 0;
  let over = false;
  req.on('data', (c) => {
    if (over) return;
    len += c.length;
    if (len > limit) { over = true; return; }
    chunks.push(c);
  });
  req.on('end', () => cb(over ? null : (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8'), over));
}

// ---- the enqueue route -------------------------------------------------------------------
const MAX_BODY = 16 * 1024 * 1024;

function present(v) { return v !== undefined && v !== null && v !== ''; }

// The reason an envelope is refused, as [status, error, message, field], or null.
function check(env) {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return [400, 'bad_request', 'the body must be a JSON object', null];
  const key = env.access_key;
  const ent = env.entity_id;
  if (typeof key !== 'string' || !present(key)) return [401, 'unauthorized', 'access_key is missing', 'access_key'];
  let keyEntity = null;
  for (const [e, keys] of opt.entities) if (keys.has(key)) { keyEntity = e; break; }
  if (keyEntity === null) return [401, 'unauthorized', 'invalid access_key', 'access_key'];
  if (!present(ent) || (typeof ent !== 'string' && typeof ent !== 'number')) return [403, 'forbidden', 'entity_id is missing', 'entity_id'];
  if (!opt.entities.has(String(ent)) || !opt.entities.get(String(ent)).has(key)) {
    return [403, 'forbidden', `the access key has no rights on entity ${JSON.stringify(String(ent))}`, 'entity_id'];
  }
  const p = env.payload;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return [422, 'validation', 'payload is required and must be an object', 'payload'];
  const streetFull = opt.streetFull && present(p.shipping_street_full);
  for (const f of REQUIRED) {
    if (present(p[f])) continue;
    if (streetFull && (f === 'shipping_street' || f === 'shipping_housenumber')) continue;
    return [422, 'validation', `payload.${f} is required`, `payload.${f}`];
  }
  if (typeof p.reference !== 'string' && typeof p.reference !== 'number') return [422, 'validation', 'payload.reference must be a string', 'payload.reference'];
  if (!['0', '1'].includes(String(p.type))) return [422, 'validation', 'payload.type must be 0 (normal) or 1 (POS)', 'payload.type'];
  return null;
}

function store(env, raw) {
  const reference = String(env.payload.reference);
  const entity = String(env.entity_id);
  const k = entity + '\u0000' + reference;
  let o = S.orders.get(k);
  if (!o) {
    o = { id: S.nextId++, entity, reference, raw, versions: 0 };
    S.orders.set(k, o);
  }
  o.raw = raw;
  o.versions++;
  return o;
}

// Microseconds since the epoch: the system clock's millisecond, refined within it by the
// monotonic clock from the first call seen in that millisecond. It never drifts from the
// system clock (node's timeOrigin + performance.now() does wherever the system clock is
// adjusted) and is within a millisecond of it.
let usMs = 0, usMono = 0;
function nowUs() {
  const ms = Date.now(), mono = performance.now() * 1000;
  if (ms !== usMs) { usMs = ms; usMono = mono; }
  return ms * 1000 + Math.min(999, Math.max(0, Math.round(mono - usMono)));
}

function enqueue(req, res) {
  S.enqueueRequests++;
  readBody(req, MAX_BODY, (raw, over) => {
    const us = nowUs();
    const entry = { seq: ++S.seq, conn: req.socket._simConn, at: Math.floor(us / 1000),
      us, status: 0, fault: null,
      ref: null, src: null, ent: null, keyOk: false, raw: raw ?? '', http: req.httpVersion, rawHeaders: req.rawHeaders };
    S.log.push(entry);
    // trimmed in chunks: shifting one entry off a long array at a time costs a copy each
    if (S.log.length > opt.logMax + (opt.logMax >> 4) + 16) {
      const n = S.log.length - opt.logMax;
      S.log.splice(0, n);
      S.logDropped += n;
    }
    if (over) { entry.status = 413; return problem(res, 413, 'too_large', 'the body is too large', null, { Connection: 'close' }); }
    let env;
    try { env = JSON.parse(raw); } catch (e) { env = undefined; }
    if (env && typeof env === 'object' && !Array.isArray(env)) {
      entry.ent = env.entity_id ?? null;
      const p = env.payload;
      if (p && typeof p === 'object') { entry.ref = p.reference ?? null; entry.src = p.source_id ?? null; }
      if (typeof env.access_key === 'string') {
        for (const keys of opt.entities.values()) if (keys.has(env.access_key)) { entry.keyOk = true; break; }
      }
    }
    const fx = faults.decide();
    if (fx) entry.fault = fx.names;
    const answer = () => {
      if (env === undefined) { entry.status = 400; return problem(res, 400, 'bad_request', 'the body is not valid JSON'); }
      const why = check(env);
      if (why) { entry.status = why[0]; return problem(res, why[0], why[1], why[2], why[3]); }
      const o = store(env, raw);
      entry.status = 200;
      send(res, 200, `{"id":${o.id},"reference":${JSON.stringify(env.payload.reference)},"entity_id":${JSON.stringify(env.entity_id)}}`);
    };
    if (!fx || !fx.action) {
      if (!fx || !fx.delay_ms) return answer();
      // the order is taken at once; only the answer is late
      return lateAnswer(req, res, entry, env, raw, fx.delay_ms);
    }
    // a fault answers; the order is stored first only when the rule says so
    if (fx.store && env !== undefined && !check(env)) store(env, raw);
    const act = () => {
      if (fx.action === 'drop') { entry.status = 0; req.socket.destroy(); return; }
      if (fx.action === 'garbage') { entry.status = fx.status; return garbage(res, fx.status, fx.garbage); }
      entry.status = fx.status;
      const h = fx.retry_after !== undefined ? { 'Retry-After': String(fx.retry_after) } : undefined;
      problem(res, fx.status, 'simulated_fault', `simulated fault: status ${fx.status}`, null, h);
    };
    entry.status = fx.action === 'drop' ? 0 : fx.status;
    if (fx.delay_ms) setTimeout(act, fx.delay_ms); else act();
  });
}

// A delay without another fault: decide and store now, send the answer after delay_ms.
function lateAnswer(req, res, entry, env, raw, delay) {
  let status, body;
  if (env === undefined) { status = 400; body = { success: false, error: 'bad_request', message: 'the body is not valid JSON' }; } else {
    const why = check(env);
    if (why) {
      status = why[0];
      body = { success: false, error: why[1], message: why[2] };
      if (why[3]) body.field = why[3];
    } else {
      const o = store(env, raw);
      status = 200;
      body = { id: o.id, reference: env.payload.reference, entity_id: env.entity_id };
    }
  }
  entry.status = status;
  setTimeout(() => send(res, status, body), delay);
}

function garbage(res, status, kind) {
  if (kind === 'json') return send(res, status, '{"result":"ok","queued":true}');
  if (kind === 'empty') return send(res, status, '', { 'Content-Type': 'text/plain' });
  send(res, status, '<html><head><title>Maintenance</title></head><body>Back soon.</body></html>',
    { 'Content-Type': 'text/html; charset=utf-8' });
}

// ---- inspection and control --------------------------------------------------------------
function headersOf(raw) {
  const h = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    h[k] = k in h ? `${h[k]}, ${raw[i + 1]}` : raw[i + 1];
  }
  return h;
}

function viewEntry(e) {
  let body = null;
  try { body = JSON.parse(e.raw); } catch (err) { body = null; }
  return { seq: e.seq, reference: e.ref, source_id: e.src, entity_id: e.ent, access_key_ok: e.keyOk,
    status: e.status, fault: e.fault, conn: e.conn, http_version: e.http, received_at: new Date(e.at).toISOString(),
    received_us: e.us,
    headers: headersOf(e.rawHeaders), body, raw: e.raw };
}

function viewOrders(entity) {
  const out = {};
  const seen = new Map();
  for (const o of S.orders.values()) if (!entity || o.entity === entity) seen.set(o.reference, (seen.get(o.reference) || 0) + 1);
  for (const o of S.orders.values()) {
    if (entity && o.entity !== entity) continue;
    // a reference held by two entities is listed once per entity as reference@entity
    const k = seen.get(o.reference) > 1 ? `${o.reference}@${o.entity}` : o.reference;
    out[k] = { id: o.id, payload: JSON.parse(o.raw).payload, versions: o.versions, entity_id: o.entity };
  }
  return out;
}

function control(req, res, url) {
  const path = url.pathname;
  const m = req.method;
  if (path === '/_sim/enqueued' && m === 'GET') {
    const since = Number(url.searchParams.get('since') || 0);
    // ?brief=1: without the bodies and headers (for benchmarks reading many thousands)
    const brief = url.searchParams.get('brief') === '1';
    return send(res, 200, S.log.filter((e) => e.seq > since).map(brief
      ? (e) => ({ seq: e.seq, reference: e.ref, status: e.status, conn: e.conn, http_version: e.http, received_us: e.us })
      : viewEntry));
  }
  if (path === '/_sim/orders' && m === 'GET') return send(res, 200, viewOrders(url.searchParams.get('entity_id')));
  if (path === '/_sim/stats' && m === 'GET') {
    return send(res, 200, { requests: S.requests, connections: S.connections, enqueue_requests: S.enqueueRequests,
      orders: S.orders.size, enqueued_logged: S.log.length, enqueued_dropped: S.logDropped, open_connections: sockets.size,
      uptime_s: (Date.now() - S.started) / 1000 });
  }
  if (path === '/_sim/state' && m === 'DELETE') {
    resetState();
    faults.clear();
    log('state reset');
    return send(res, 200, { reset: true });
  }
  if (path === '/_sim/faults') {
    if (m === 'GET') return send(res, 200, faults.view());
    if (m === 'DELETE') { faults.clear(); log('faults cleared'); return send(res, 200, []); }
    if (m === 'PUT') {
      return readBody(req, 65536, (raw) => {
        let body;
        try { body = JSON.parse(raw); } catch (e) { return problem(res, 400, 'bad_request', 'the fault body is not valid JSON'); }
        let downMs;
        try { downMs = faults.set(body); } catch (e) {
          if (!e.bad) throw e;
          return problem(res, 400, 'bad_fault', e.message);
        }
        log(`faults set: ${raw.replace(/\s+/g, ' ').slice(0, 300)}`);
        if (downMs) {
          res.on('finish', () => goDown(downMs));
          return send(res, 200, { down_for_ms: downMs, faults: faults.view() }, { Connection: 'close' });
        }
        return send(res, 200, faults.view());
      });
    }
    return problem(res, 405, 'method_not_allowed', 'GET, PUT or DELETE', null, { Allow: 'GET, PUT, DELETE' });
  }
  const allow = { '/_sim/enqueued': 'GET', '/_sim/orders': 'GET', '/_sim/stats': 'GET', '/_sim/state': 'DELETE' }[path];
  if (allow) return problem(res, 405, 'method_not_allowed', `only ${allow}`, null, { Allow: allow });
  return problem(res, 404, 'not_found', `no route ${path}`);
}

function handle(req, res) {
  S.requests++;
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  if (path === '/api/v1/order/enqueue') {
    if (req.method === 'POST') return enqueue(req, res);
    req.resume();
    return problem(res, 405, 'method_not_allowed', 'only POST', null, { Allow: 'POST' });
  }
  if (path.startsWith('/_sim/')) {
    const url = new URL(req.url, 'http://sim');
    if (req.method !== 'PUT') req.resume();
    return control(req, res, url);
  }
  req.resume();
  return problem(res, 404, 'not_found', `no route ${path}`);
}

// ---- listeners, and "down" ---------------------------------------------------------------
const servers = [];

function onConnection(sock) {
  S.connections++;
  sock._simConn = ++connSeq;
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
}

function makeServers() {
  if (opt.port !== undefined) {
    const s = http.createServer({ keepAliveTimeout: opt.keepAliveMs }, handle);
    s.keepAliveTimeout = opt.keepAliveMs;
    servers.push({ server: s, port: opt.port, scheme: 'http' });
  }
  if (opt.tlsPort !== undefined) {
    const tlsOpts = { cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key) };
    let s;
    if (opt.http2) {
      s = require('http2').createSecureServer({ ...tlsOpts, allowHTTP1: true }, handle);
    } else {
      s = https.createServer({ ...tlsOpts, ALPNProtocols: ['http/1.1'] }, handle);
      s.keepAliveTimeout = opt.keepAliveMs;
    }
    servers.push({ server: s, port: opt.tlsPort, scheme: 'https' });
  }
  for (const l of servers) {
    // over TLS the requests see the TLS socket (through HTTP/2's session too), not the TCP
    // one: count and number those
    if (l.scheme === 'https') l.server.on('secureConnection', onConnection);
    else l.server.on('connection', onConnection);
    l.server.on('clientError', (err, sock) => { if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); else sock.destroy(); });
  }
}

function listen(l, cb) {
  l.server.once('error', (err) => {
    if (!l.started) { log(`cannot listen on ${opt.host}:${l.port}: ${err.message}`); process.exit(1); }
    // coming back from down: the port may be briefly held; try again
    log(`listen again on ${l.port}: ${err.message}; retrying`);
    setTimeout(() => listen(l, cb), 100);
  });
  l.server.listen(l.port, opt.host, () => { l.started = true; l.server.removeAllListeners('error'); cb(); });
}

let downTimer = null;
function goDown(ms) {
  if (downTimer) clearTimeout(downTimer);
  log(`down for ${ms} ms: listeners closed, open connections reset`);
  for (const l of servers) if (l.server.listening) l.server.close();
  for (const s of sockets) {
    try { s.resetAndDestroy(); } catch (e) { s.destroy(); }   // RST where the handle allows it
  }
  downTimer = setTimeout(() => {
    downTimer = null;
    let n = servers.length;
    for (const l of servers) listen(l, () => { if (--n === 0) log('up again'); });
  }, ms);
}

makeServers();
let pending = servers.length;
for (const l of servers) {
  listen(l, () => {
    if (--pending) return;
    if (!opt.quiet) {
      log(`listening on ${servers.map((x) => `${x.scheme}://${opt.host}:${x.port}`).join(' ')}` +
        ` for ${opt.entities.size} entit${opt.entities.size === 1 ? 'y' : 'ies'} (pid ${process.pid})`);
    }
  });
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { log(`${sig}: exiting`); process.exit(0); });
if (opt.exitWith) {
  setInterval(() => {
    try { process.kill(opt.exitWith, 0); } catch (e) { log(`process ${opt.exitWith} is gone: exiting`); process.exit(0); }
  }, 500).unref();
}
