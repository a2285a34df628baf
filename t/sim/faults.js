'use strict';
// Fault injection for the Clougistic simulator: parses and validates the fault rules that
// PUT /_sim/faults sets, lifts each after its for_s, and decides per enqueue call which
// rules fire. A rule fires as a whole with probability `rate` (its own random draw).

const KEYS = {
  status: 'int', rate: 'number', retry_after: 'retry', delay_ms: 'int', drop: 'bool',
  garbage: 'garbage', down: 'bool', for_s: 'number', store: 'bool', seed: 'int',
};
const GARBAGE = ['html', 'json', 'empty'];

function bad(msg) { const e = new Error(msg); e.bad = true; return e; }

// A small seeded generator (mulberry32), so a test can ask for a reproducible sequence.
function seeded(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One rule from its JSON object; throws an error with .bad on anything invalid.
function parseRule(o, i) {
  const where = `fault ${i}`;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw bad(`${where}: must be a JSON object`);
  const names = Object.keys(o);
  if (names.length === 0) throw bad(`${where}: empty; give at least one of ${Object.keys(KEYS).join(', ')}`);
  for (const k of names) {
    const kind = KEYS[k];
    if (!kind) throw bad(`${where}: unknown key "${k}" (known: ${Object.keys(KEYS).join(', ')})`);
    const v = o[k];
    const ok = kind === 'int' ? Number.isInteger(v)
      : kind === 'number' ? typeof v === 'number' && Number.isFinite(v)
      : kind === 'bool' ? typeof v === 'boolean'
      : kind === 'retry' ? (Number.isInteger(v) && v >= 0) || (typeof v === 'string' && v.length > 0 && !/[\r\n]/.test(v))
      : kind === 'garbage' ? typeof v === 'boolean' || GARBAGE.includes(v)
      : false;
    if (!ok) throw bad(`${where}: "${k}" has the wrong type or value (${JSON.stringify(v)})`);
  }
  if ('status' in o && (o.status < 200 || o.status > 599)) throw bad(`${where}: status must be 200..599`);
  if ('rate' in o && (o.rate < 0 || o.rate > 1)) throw bad(`${where}: rate must be 0..1`);
  if ('delay_ms' in o && (o.delay_ms < 0 || o.delay_ms > 600000)) throw bad(`${where}: delay_ms must be 0..600000`);
  if ('for_s' in o && (o.for_s <= 0 || o.for_s > 86400)) throw bad(`${where}: for_s must be above 0 and at most 86400`);
  if (o.down) {
    if (!('for_s' in o)) throw bad(`${where}: down needs for_s (while down the control routes cannot be reached either)`);
    const extra = names.filter((k) => k !== 'down' && k !== 'for_s');
    if (extra.length) throw bad(`${where}: down combines with for_s only, not ${extra.join(', ')}`);
  }
  const r = {
    status: o.status ?? (o.retry_after !== undefined ? 429 : undefined),
    rate: o.rate ?? 1,
    retry_after: o.retry_after,
    delay_ms: o.delay_ms ?? 0,
    drop: o.drop === true,
    garbage: o.garbage === true ? 'html' : (o.garbage || null),
    down: o.down === true,
    for_s: o.for_s,
    // whether the order is stored before the fault's answer: by default a garbage 200 is
    // an order the warehouse took; a fault status or a dropped connection is one it did not
    store: o.store ?? (o.garbage ? true : (o.status === undefined && o.retry_after === undefined && !o.drop)),
    seed: o.seed,
    random: o.seed !== undefined ? seeded(o.seed) : Math.random,
    hits: 0,
    calls: 0,
    expires: o.for_s !== undefined ? Date.now() + o.for_s * 1000 : null,
    timer: null,
  };
  return r;
}

class Faults {
  constructor(hooks) {
    this.rules = [];
    this.hooks = hooks;   // { down(ms) } : the server stops listening for ms milliseconds
  }

  // Replaces the rules with those of a PUT body (an object or an array of objects).
  set(body) {
    const list = Array.isArray(body) ? body : [body];
    const rules = list.map((o, i) => parseRule(o, i));
    if (rules.filter((r) => r.down).length > 1) throw bad('only one down fault at a time');
    this.clear();
    this.rules = rules;
    for (const r of rules) {
      if (r.down) continue;
      if (r.expires !== null) {
        r.timer = setTimeout(() => this.lift(r), r.expires - Date.now());
        r.timer.unref();
      }
    }
    // down is not kept as a rule: it is a state of the listeners, with its own timer
    this.rules = rules.filter((r) => !r.down);
    const down = rules.find((r) => r.down);
    return down ? down.for_s * 1000 : 0;
  }

  lift(r) {
    if (r.timer) clearTimeout(r.timer);
    this.rules = this.rules.filter((x) => x !== r);
  }

  clear() {
    for (const r of this.rules) if (r.timer) clearTimeout(r.timer);
    this.rules = [];
  }

  // The effect on one enqueue call: { delay_ms, action: null|'status'|'drop'|'garbage',
  // status, retry_after, garbage, store, names } (null when no rule fires).
  decide() {
    if (this.rules.length === 0) return null;
    let fx = null;
    for (const r of this.rules) {
      r.calls++;
      if (r.rate < 1 && r.random() >= r.rate) continue;
      r.hits++;
      if (!fx) fx = { delay_ms: 0, action: null, store: true, names: [] };
      fx.delay_ms += r.delay_ms;
      if (fx.action) continue;
      if (r.drop) fx.action = 'drop';
      else if (r.garbage) { fx.action = 'garbage'; fx.garbage = r.garbage; fx.status = r.status ?? 200; }
      else if (r.status !== undefined) { fx.action = 'status'; fx.status = r.status; fx.retry_after = r.retry_after; }
      if (fx.action) fx.store = r.store;
    }
    if (fx) fx.names = describeEffect(fx);
    return fx;
  }

  view() {
    const now = Date.now();
    return this.rules.map((r) => {
      const v = {};
      if (r.status !== undefined) v.status = r.status;
      v.rate = r.rate;
      if (r.retry_after !== undefined) v.retry_after = r.retry_after;
      if (r.delay_ms) v.delay_ms = r.delay_ms;
      if (r.drop) v.drop = true;
      if (r.garbage) v.garbage = r.garbage;
      v.store = r.store;
      if (r.seed !== undefined) v.seed = r.seed;
      if (r.expires !== null) v.remaining_ms = Math.max(0, r.expires - now);
      v.calls = r.calls;
      v.hits = r.hits;
      return v;
    });
  }
}

function describeEffect(fx) {
  const n = [];
  if (fx.delay_ms) n.push(`delay_ms=${fx.delay_ms}`);
  if (fx.action === 'drop') n.push('drop');
  if (fx.action === 'garbage') n.push(`garbage=${fx.garbage}`);
  if (fx.action === 'status') n.push(`status=${fx.status}`);
  return n.join(',');
}

module.exports = { Faults };
