// Behaviour tests of the widget's pure logic (SSE parsing, the outbox, de-duplication by seq,
// plurals), run under node by tests/widget.rs: `node tests/widget_logic.test.js`.
// The script is loaded in a vm context holding `__otklikWidgetTest = {}`; the widget then
// fills that object in with its logic and does not start.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

function loadLogic() {
  const source = fs.readFileSync(path.join(__dirname, "..", "assets", "widget.js"), "utf8");
  const context = vm.createContext({ __otklikWidgetTest: {}, TextDecoder, crypto: globalThis.crypto, setTimeout, clearTimeout });
  vm.runInContext(source, context, { filename: "widget.js" });
  return context.__otklikWidgetTest;
}
const W = loadLogic();

// Values made inside the vm context have that context's Array/Object prototypes, which
// deepStrictEqual would count as a difference: compare plain copies.
const plain = (value) => (value === undefined ? value : JSON.parse(JSON.stringify(value)));
const same = (actual, expected, message) => assert.deepEqual(plain(actual), plain(expected), message);

// A small deterministic PRNG, so a failure can be replayed.
function prng(seed) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

// ───────── plurals and strings ─────────

test("Russian plural forms follow one/few/many", () => {
  const cases = { 1: "one", 2: "few", 3: "few", 4: "few", 5: "many", 11: "many", 12: "many", 14: "many", 21: "one", 22: "few", 25: "many", 0: "many", 101: "one", 111: "many", 112: "many", 1004: "few" };
  for (const [n, form] of Object.entries(cases)) assert.equal(W.plural(Number(n), "ru"), form, `plural(${n}, ru)`);
});

test("English plural forms are one and other", () => {
  assert.equal(W.plural(1, "en"), "one");
  for (const n of [0, 2, 5, 21]) assert.equal(W.plural(n, "en"), "other");
});

test("every plural string has the forms its language needs", () => {
  for (const [lang, forms] of [["ru", ["one", "few", "many"]], ["en", ["one", "other"]]]) {
    for (const [key, value] of Object.entries(W.I18N[lang])) {
      if (typeof value === "object") same(Object.keys(value).sort(), forms.slice().sort(), `${lang}.${key}`);
    }
  }
});

test("the language comes from the first hint given, Russian or else English", () => {
  assert.equal(W.pickLang("en", "ru", "ru-RU"), "en");
  assert.equal(W.pickLang(null, "ru-RU", "en-US"), "ru");
  assert.equal(W.pickLang("", "", "ru"), "ru");
  assert.equal(W.pickLang("", "de", "ru"), "en");
  assert.equal(W.pickLang(undefined, undefined, undefined), "en");
});

test("queue waits are shown as minutes and seconds", () => {
  assert.equal(W.formatDuration(80), "1:20");
  assert.equal(W.formatDuration(5), "0:05");
  assert.equal(W.formatDuration(3725), "1:02:05");
  assert.equal(W.formatDuration(-3), "0:00");
});

test("only a hex colour reaches the stylesheet", () => {
  assert.equal(W.safeColour("#1f6feb"), "#1f6feb");
  assert.equal(W.safeColour(" #ABC "), "#ABC");
  for (const bad of ["red", "#12345", "#1f6feb; } * { display:none", "url(x)", null, "expression(alert(1))"]) assert.equal(W.safeColour(bad), null, String(bad));
  assert.equal(W.contrastText("#ffffff"), "#111");
  assert.equal(W.contrastText("#1f6feb"), "#fff");
  assert.equal(W.contrastText("#ff0"), "#111");
});

// ───────── retry timing ─────────

test("reconnects back off 1, 2, 4 … seconds up to 30", () => {
  same([0, 1, 2, 3, 4, 5, 6, 50].map(W.backoffDelay), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(W.parseRetryAfter("7"), 7000);
  const now = Date.parse("2026-11-23T10:00:00Z");
  assert.equal(W.parseRetryAfter("Mon, 23 Nov 2026 10:00:30 GMT", now), 30000);
  assert.equal(W.parseRetryAfter(null), null);
  assert.equal(W.parseRetryAfter("soon"), null);
});

// ───────── the SSE parser ─────────

const STREAM = [
  "\uFEFF: ping\n\n",
  "event: hello\ndata: {\"visitor_id\":\"v1\"}\n\n",
  "event: entry\r\ndata: {\"seq\":1,\"body\":\"Здравствуйте! 🍵 Чай «Улун»\"}\r\n\r\n",
  ": ping\r\r",
  "event: typing\rdata: {\"typing\":true,\"agent_name\":\"Анна\"}\r\r",
  "id: 42\nevent: entry\ndata: line one\ndata: line two\ndata\n\n",
  "retry: 3000\nevent:chat\ndata:{\"state\":\"active\"}\nunknown: field\n\n",
  "data: no event name\n\n",
  "event: resync\ndata: {}\n\n",
  "event: entry\ndata: cut off by the end of the stream",
].join("");
const BYTES = new TextEncoder().encode(STREAM);

function parseChunks(chunks) {
  const events = [];
  const parser = W.createSseParser((e) => events.push(e));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return { events, parser };
}

test("the SSE parser reads events, comments, multi-line data and every kind of line end", () => {
  const { events, parser } = parseChunks([BYTES]);
  same(events.map((e) => [e.event, e.data]), [
    ["hello", "{\"visitor_id\":\"v1\"}"],
    ["entry", "{\"seq\":1,\"body\":\"Здравствуйте! 🍵 Чай «Улун»\"}"],
    ["typing", "{\"typing\":true,\"agent_name\":\"Анна\"}"],
    ["entry", "line one\nline two\n"],
    ["chat", "{\"state\":\"active\"}"],
    ["message", "no event name"],
    ["resync", "{}"],
  ]);
  assert.equal(events[3].id, "42");
  assert.equal(parser.lastEventId, "42");
  assert.equal(parser.retry, 3000);
});

test("SSE frames split at every byte boundary parse identically", () => {
  const whole = JSON.stringify(parseChunks([BYTES]).events);
  for (let cut = 0; cut <= BYTES.length; cut++) {
    const split = JSON.stringify(parseChunks([BYTES.slice(0, cut), BYTES.slice(cut)]).events);
    assert.equal(split, whole, `split at byte ${cut}`);
  }
  const oneByOne = Array.from(BYTES, (b) => new Uint8Array([b]));
  assert.equal(JSON.stringify(parseChunks(oneByOne).events), whole, "one byte at a time");
});

test("SSE frames in random chunks parse identically", () => {
  const whole = JSON.stringify(parseChunks([BYTES]).events);
  const random = prng(7);
  for (let run = 0; run < 300; run++) {
    const chunks = [];
    for (let at = 0; at < BYTES.length;) {
      const size = 1 + Math.floor(random() * 23);
      chunks.push(BYTES.slice(at, at + size));
      at += size;
    }
    assert.equal(JSON.stringify(parseChunks(chunks).events), whole, `run ${run}`);
  }
});

test("a CRLF split between two chunks is one line end, not two", () => {
  const { events } = parseChunks(["event: a\r", "\ndata: 1\r", "\n\r", "\n", "data: 2\r\n\r\n"]);
  same(events.map((e) => [e.event, e.data]), [["a", "1"], ["message", "2"]]);
});

// ───────── entries by seq ─────────

test("entries are kept in seq order and a seq seen before is dropped", () => {
  const log = W.createEntryLog();
  assert.equal(log.add({ seq: 2, body: "b" }), 0);
  assert.equal(log.add({ seq: 1, body: "a" }), 0);
  assert.equal(log.add({ seq: 4, body: "d" }), 2);
  assert.equal(log.add({ seq: 2, body: "b again, from a resync" }), -1);
  assert.equal(log.add({ seq: 3, body: "c" }), 2);
  assert.equal(log.add({ seq: 4, body: "d again, from the stream" }), -1);
  assert.equal(log.add({ body: "no seq" }), -1);
  same(log.list().map((e) => e.body), ["a", "b", "c", "d"]);
  assert.equal(log.lastSeq, 4);
  assert.equal(log.size, 4);
});

test("a resync resumes after the unbroken run of seqs, not after the highest one held", () => {
  // The stream was down while the agent wrote seq 7; our own message came back as seq 8.
  const log = W.createEntryLog();
  for (let seq = 1; seq <= 6; seq++) log.add({ seq });
  assert.equal(log.resumeSeq, 6);
  log.add({ seq: 8, client_id: "ours" });
  assert.equal(log.lastSeq, 8);
  assert.equal(log.resumeSeq, 6, "seq 7 is still to fetch");
  log.add({ seq: 7 });
  assert.equal(log.resumeSeq, 8);
  assert.equal(W.createEntryLog().resumeSeq, 0);
});

test("the same entries from the stream and a resync in any order are shown once", () => {
  const random = prng(11);
  const entries = Array.from({ length: 40 }, (_, i) => ({ seq: i + 1 }));
  for (let run = 0; run < 50; run++) {
    const log = W.createEntryLog();
    const arrivals = entries.concat(entries, entries.slice(10, 20)).sort(() => random() - 0.5);
    let shown = 0;
    for (const e of arrivals) if (log.add(Object.assign({}, e)) >= 0) shown++;
    assert.equal(shown, 40);
    same(log.list().map((e) => e.seq), entries.map((e) => e.seq));
  }
});

test("a chat view never moves read marks back, and an ended chat stays ended", () => {
  const a = { ticket_id: "t", state: "active", last_seq: 7, visitor_read_seq: 6, agent_read_seq: 5 };
  const older = { ticket_id: "t", state: "active", last_seq: 5, visitor_read_seq: 4, agent_read_seq: 3 };
  same(W.mergeChat(a, older), a);
  const ended = W.mergeChat(a, { ticket_id: "t", state: "ended", last_seq: 8, visitor_read_seq: 6, agent_read_seq: 8 });
  assert.equal(ended.state, "ended");
  assert.equal(ended.agent_read_seq, 8);
  assert.equal(W.mergeChat(ended, a).state, "ended");
  assert.equal(W.mergeChat(a, { ticket_id: "u", state: "queued" }).ticket_id, "u");
});

// ───────── the outbox ─────────

function memoryStorage() {
  const map = new Map();
  return {
    map,
    get: (k) => (map.has(k) ? map.get(k) : null),
    set: (k, v) => map.set(k, String(v)),
    remove: (k) => map.delete(k),
  };
}

/** A scheduler the test runs by hand. */
function manualClock() {
  const timers = [];
  return {
    timers,
    schedule(fn, ms) {
      const timer = { fn, ms, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
    async runNext() {
      const timer = timers.find((x) => !x.cancelled && !x.ran);
      assert.ok(timer, "a retry is scheduled");
      timer.ran = true;
      await timer.fn();
      await settle();
      return timer.ms;
    },
    pending() {
      return timers.filter((x) => !x.cancelled && !x.ran);
    },
  };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

test("an outbox entry survives a failed send and a reload, and is sent exactly once after success", async () => {
  const storage = memoryStorage();
  const key = "otklik:site:outbox";
  const clock = manualClock();
  const delivered = [];
  let online = false;
  let attempts = 0;
  const send = async (item) => {
    attempts++;
    if (!online) throw new TypeError("Failed to fetch");
    delivered.push(item.client_id);
    return { ok: true };
  };
  let outbox = W.createOutbox(storage, key);
  let sender = W.createSender({ outbox, send, schedule: clock.schedule });

  outbox.add({ client_id: "c1", body: "Где мой заказ?" });
  assert.match(storage.get(key), /c1/, "stored before the first send");
  await sender.kick();
  assert.equal(attempts, 1);
  same(delivered, []);
  assert.match(storage.get(key), /c1/, "still stored after the failure");
  assert.equal(clock.pending().length, 1);
  assert.equal(clock.pending()[0].ms, 1000);
  assert.equal(await clock.runNext(), 1000);
  assert.equal(clock.pending()[0].ms, 2000, "the second retry waits longer");

  // the page is reloaded: a new outbox over the same storage still holds the message
  outbox = W.createOutbox(storage, key);
  sender = W.createSender({ outbox, send, schedule: clock.schedule });
  same(outbox.items().map((i) => i.body), ["Где мой заказ?"]);

  online = true;
  await sender.kick(); // the `online` event
  same(delivered, ["c1"]);
  assert.equal(storage.get(key), null, "gone from storage once acknowledged");
  await sender.kick();
  await sender.flush();
  same(delivered, ["c1"], "never sent again");
});

test("outbox messages are sent in order, a later one never before an earlier one", async () => {
  const storage = memoryStorage();
  const clock = manualClock();
  const outbox = W.createOutbox(storage, "k");
  const sent = [];
  let failFirst = 2;
  const sender = W.createSender({
    outbox,
    schedule: clock.schedule,
    send: async (item) => {
      if (item.client_id === "a" && failFirst-- > 0) return { retry: true };
      sent.push(item.client_id);
      return { ok: true };
    },
  });
  for (const id of ["a", "b", "c"]) outbox.add({ client_id: id, body: id });
  await sender.kick();
  same(sent, []);
  await clock.runNext();
  same(sent, []);
  await clock.runNext();
  same(sent, ["a", "b", "c"]);
  assert.equal(outbox.first(), null);
});

test("a kick while a send is in flight does not send the same message twice", async () => {
  const outbox = W.createOutbox(memoryStorage(), "k");
  const calls = [];
  let release;
  const sender = W.createSender({
    outbox,
    schedule: manualClock().schedule,
    send: (item) => {
      calls.push(item.client_id);
      return new Promise((resolve) => (release = () => resolve({ ok: true })));
    },
  });
  outbox.add({ client_id: "x", body: "x" });
  const first = sender.kick();
  await settle();
  sender.kick(); // the stream reconnects meanwhile
  sender.flush();
  await settle();
  same(calls, ["x"]);
  release();
  await first;
  await settle();
  same(calls, ["x"]);
});

test("a message acknowledged by the live stream while its request is in flight leaves the outbox once", async () => {
  const outbox = W.createOutbox(memoryStorage(), "k");
  const results = [];
  let release;
  const sender = W.createSender({
    outbox,
    schedule: manualClock().schedule,
    send: () => new Promise((resolve) => (release = () => resolve({ ok: true }))),
    onResult: (item, result) => results.push([item.client_id, !!result.ok]),
  });
  outbox.add({ client_id: "m", body: "hi" });
  outbox.add({ client_id: "n", body: "there" });
  sender.kick();
  await settle();
  assert.equal(outbox.remove("m"), true, "the entry with client_id m came on the stream");
  release();
  await settle();
  same(results.map((r) => r[0]), ["m"], "m reported once; n is being sent");
  release();
  await settle();
  same(results.map((r) => r[0]), ["m", "n"]);
  assert.equal(outbox.first(), null);
});

test("a refused message leaves the outbox and is reported, the next one goes on", async () => {
  const outbox = W.createOutbox(memoryStorage(), "k");
  const results = [];
  const sender = W.createSender({
    outbox,
    schedule: manualClock().schedule,
    send: async (item) => (item.client_id === "bad" ? { reject: true, reason: "too long" } : { ok: true }),
    onResult: (item, result) => results.push([item.client_id, result.reject ? result.reason : "ok"]),
  });
  outbox.add({ client_id: "bad", body: "x".repeat(10) });
  outbox.add({ client_id: "good", body: "y" });
  await sender.kick();
  same(results, [["bad", "too long"], ["good", "ok"]]);
});

test("a 429 waits for Retry-After rather than the backoff", async () => {
  const clock = manualClock();
  const outbox = W.createOutbox(memoryStorage(), "k");
  let calls = 0;
  const sender = W.createSender({
    outbox,
    schedule: clock.schedule,
    send: async () => (++calls === 1 ? { retry: true, after: 12000 } : { ok: true }),
  });
  outbox.add({ client_id: "r", body: "r" });
  await sender.kick();
  assert.equal(clock.pending()[0].ms, 12000);
  await clock.runNext();
  assert.equal(calls, 2);
  assert.equal(outbox.first(), null);
});

test("a file waits in the outbox for this page only, text messages are stored", () => {
  const storage = memoryStorage();
  const outbox = W.createOutbox(storage, "k");
  outbox.add({ client_id: "f", body: "", file: { name: "photo.jpg" } });
  assert.equal(storage.get("k"), null);
  outbox.add({ client_id: "t", body: "text" });
  same(JSON.parse(storage.get("k")).map((i) => i.client_id), ["t"]);
  same(outbox.items().map((i) => i.client_id), ["f", "t"]);
  outbox.add({ client_id: "t", body: "text" });
  assert.equal(outbox.items().length, 2, "the same client_id is not queued twice");
});

test("a broken or foreign outbox in storage is ignored, not fatal", () => {
  const storage = memoryStorage();
  storage.set("k", "{not json");
  same(W.createOutbox(storage, "k").items(), []);
  storage.set("k", JSON.stringify([{ client_id: "ok", body: "b" }, { nope: 1 }, null]));
  same(W.createOutbox(storage, "k").items().map((i) => i.client_id), ["ok"]);
});

test("storage that throws falls back to memory for the page", () => {
  const throwing = () => ({
    getItem() { throw new Error("SecurityError"); },
    setItem() { throw new Error("SecurityError"); },
    removeItem() { throw new Error("SecurityError"); },
  });
  const s = W.safeStorage(throwing);
  s.set("a", "1");
  assert.equal(s.get("a"), "1");
  s.remove("a");
  assert.equal(s.get("a"), null);
  const missing = W.safeStorage(() => { throw new Error("no localStorage"); });
  missing.set("b", "2");
  assert.equal(missing.get("b"), "2");
});

// ───────── small things ─────────

test("files are checked for type and the 10 MB limit before upload", () => {
  assert.equal(W.checkFile({ type: "image/png", size: 1000 }), null);
  assert.equal(W.checkFile({ type: "application/pdf", size: 10 * 1024 * 1024 }), null);
  assert.equal(W.checkFile({ type: "application/pdf", size: 10 * 1024 * 1024 + 1 }), "file_too_large");
  assert.equal(W.checkFile({ type: "image/svg+xml", size: 10 }), "file_type");
  assert.equal(W.checkFile({ type: "text/html", size: 10 }), "file_type");
});

test("client ids are UUIDs and differ", () => {
  const ids = new Set(Array.from({ length: 100 }, () => W.uuid()));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("templates fill in names and keep unknown placeholders", () => {
  assert.equal(W.format("{name} печатает…", { name: "Анна" }), "Анна печатает…");
  assert.equal(W.format("{a} {b}", { a: 1 }), "1 {b}");
  assert.equal(W.looksLikeEmail("olga@example.ru"), true);
  assert.equal(W.looksLikeEmail("olga@example"), false);
  assert.equal(W.looksLikeEmail("o lga@example.ru"), false);
});
