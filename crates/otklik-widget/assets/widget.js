/*!
 * Otklik live-chat widget. Served as-is at /widget.js (AGPL-3.0-or-later).
 *
 *   <script src="https://HOST/widget.js" data-site="SITE_ID" async></script>
 *
 * Contract: docs/chat-widget-api.md. Hand-written, no dependencies, no build step.
 * Rules this file keeps (the crate's tests check the first three):
 *   - one IIFE; the only global it touches is window.Otklik;
 *   - it never parses markup nor evaluates a string as code: every piece of text from the
 *     server or the visitor goes through textContent or a Text node;
 *   - every string exists in Russian and English (the JSON block below);
 *   - a message is written to the localStorage outbox before it is sent and leaves it only
 *     when the server has acknowledged it (201/200, or the entry arrives on the live stream);
 *   - entries are keyed by the server's seq, so a resync never shows one twice.
 */
(function () {
  "use strict";

  // ─────────────────────────── Strings ───────────────────────────
  // Strict JSON between the markers (the Rust tests parse it). Plural strings are objects
  // keyed by plural category: ru one/few/many, en one/other.
  const I18N = /* i18n:begin */ {
    "ru": {
      "open_chat": "Открыть чат",
      "close_chat": "Свернуть чат",
      "online": "Онлайн — обычно отвечаем за пару минут",
      "offline": "Сейчас никого нет на месте",
      "offline_hint": "Оставьте сообщение и e-mail — ответим письмом.",
      "offline_done": "Спасибо! Ответ придёт на {email}.",
      "offline_done_noemail": "Спасибо! Ответ придёт по e-mail.",
      "agent_status": "{name} на связи",
      "name": "Имя",
      "email": "E-mail",
      "order_number": "Номер заказа",
      "optional": "(необязательно)",
      "required_mark": "обязательное поле",
      "message": "Сообщение",
      "placeholder": "Напишите сообщение…",
      "send": "Отправить",
      "attach": "Прикрепить файл",
      "field_required": "Заполните это поле",
      "email_invalid": "Проверьте адрес e-mail",
      "file_too_large": "Файл больше 10 МБ",
      "file_type": "Можно прикрепить JPEG, PNG, GIF, WebP или PDF",
      "attach_first": "Сначала напишите сообщение",
      "agent": "Оператор",
      "typing": "{name} печатает…",
      "queue": "Вы #{position} в очереди · ожидание {wait}",
      "mark_pending": "Отправляется",
      "mark_sent": "Доставлено",
      "mark_read": "Прочитано",
      "mark_failed": "Не отправлено: {reason}",
      "ev_queued": "Вы в очереди, оператор скоро подключится",
      "ev_agent_joined": "{name} подключается к чату",
      "ev_transferred": "Чат передан: {name}",
      "ev_ended": "Чат завершён",
      "ev_offline": "Сообщение принято, ответим по e-mail",
      "end_chat": "Завершить чат",
      "transcript": "Прислать переписку на e-mail",
      "transcript_send": "Прислать",
      "transcript_sent": "Переписка отправлена на {email}",
      "transcript_sent_noemail": "Переписка отправлена",
      "new_chat": "Начать новый чат",
      "history": { "one": "{n} прошлый чат", "few": "{n} прошлых чата", "many": "{n} прошлых чатов" },
      "unread": { "one": "{n} непрочитанное сообщение", "few": "{n} непрочитанных сообщения", "many": "{n} непрочитанных сообщений" },
      "chat_number": "Чат №{number}",
      "load_failed": "Не удалось загрузить",
      "reconnecting": "Нет связи — сообщения отправятся, когда она появится",
      "unavailable": "Чат сейчас недоступен",
      "identity_required": "Войдите в личный кабинет магазина, чтобы написать в чат",
      "error": "Что-то пошло не так, попробуйте ещё раз"
    },
    "en": {
      "open_chat": "Open chat",
      "close_chat": "Minimise chat",
      "online": "Online — we usually answer within minutes",
      "offline": "Nobody is available right now",
      "offline_hint": "Leave a message and your e-mail — we will answer by e-mail.",
      "offline_done": "Thank you! The answer will come to {email}.",
      "offline_done_noemail": "Thank you! The answer will come by e-mail.",
      "agent_status": "{name} is here to help",
      "name": "Name",
      "email": "E-mail",
      "order_number": "Order number",
      "optional": "(optional)",
      "required_mark": "required",
      "message": "Message",
      "placeholder": "Write a message…",
      "send": "Send",
      "attach": "Attach a file",
      "field_required": "Please fill this in",
      "email_invalid": "Please check the e-mail address",
      "file_too_large": "The file is larger than 10 MB",
      "file_type": "You can attach JPEG, PNG, GIF, WebP or PDF",
      "attach_first": "Write a message first",
      "agent": "Agent",
      "typing": "{name} is typing…",
      "queue": "You are #{position} in the queue · waiting {wait}",
      "mark_pending": "Sending",
      "mark_sent": "Delivered",
      "mark_read": "Read",
      "mark_failed": "Not sent: {reason}",
      "ev_queued": "You are in the queue, an agent will join soon",
      "ev_agent_joined": "{name} joined the chat",
      "ev_transferred": "Chat transferred to {name}",
      "ev_ended": "The chat has ended",
      "ev_offline": "Message received, we will answer by e-mail",
      "end_chat": "End chat",
      "transcript": "Email me the transcript",
      "transcript_send": "Send",
      "transcript_sent": "The transcript was sent to {email}",
      "transcript_sent_noemail": "The transcript was sent",
      "new_chat": "Start a new chat",
      "history": { "one": "{n} earlier chat", "other": "{n} earlier chats" },
      "unread": { "one": "{n} unread message", "other": "{n} unread messages" },
      "chat_number": "Chat #{number}",
      "load_failed": "Could not load",
      "reconnecting": "No connection — messages will be sent once it is back",
      "unavailable": "The chat is not available right now",
      "identity_required": "Please sign in to the shop to chat with us",
      "error": "Something went wrong, please try again"
    }
  } /* i18n:end */;

  const EVENT_KEYS = {
    queued: "ev_queued",
    agent_joined: "ev_agent_joined",
    transferred: "ev_transferred",
    ended: "ev_ended",
    offline: "ev_offline",
  };

  // ─────────────────────────── Pure logic ───────────────────────────
  // Everything in this section is free of DOM and network, and is exercised by
  // tests/widget_logic.test.js under node.

  /** The language: data-lang, then <html lang>, then the browser's; "ru" or "en". */
  function pickLang(...candidates) {
    for (const c of candidates) {
      const code = String(c || "").trim().toLowerCase();
      if (!code) continue;
      return code.startsWith("ru") ? "ru" : "en";
    }
    return "en";
  }

  /** CLDR plural category of integer n: ru one/few/many, en one/other. */
  function plural(n, lang) {
    n = Math.abs(Math.trunc(n));
    if (lang === "ru") {
      const d = n % 10;
      const dd = n % 100;
      if (d === 1 && dd !== 11) return "one";
      if (d >= 2 && d <= 4 && (dd < 12 || dd > 14)) return "few";
      return "many";
    }
    return n === 1 ? "one" : "other";
  }

  function format(template, vars) {
    return String(template).replace(/\{(\w+)\}/g, (whole, name) =>
      vars && vars[name] != null ? String(vars[name]) : whole
    );
  }

  /** "1:20", "12:05", "1:02:03". */
  function formatDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

  /** Reconnect/retry delay in ms for the n-th consecutive failure: 1 s, 2 s, 4 s… at most 30 s. */
  function backoffDelay(attempt) {
    return Math.min(30000, 1000 * Math.pow(2, Math.max(0, Math.min(attempt, 15))));
  }

  /** Retry-After (delta seconds or an HTTP date) in ms, or null. */
  function parseRetryAfter(value, now) {
    if (value == null || value === "") return null;
    const text = String(value).trim();
    if (/^\d+$/.test(text)) return Number(text) * 1000;
    const at = Date.parse(text);
    return Number.isNaN(at) ? null : Math.max(0, at - (now == null ? Date.now() : now));
  }

  /** "#1f6feb" or "#abc" (optionally with alpha), else null: the colour goes into CSS. */
  function safeColour(value) {
    const text = String(value || "").trim();
    return /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(text) ? text : null;
  }

  /** Black or white, whichever reads better on the given #rgb/#rrggbb colour. */
  function contrastText(hex) {
    let h = hex.slice(1);
    if (h.length <= 4) h = h.split("").map((c) => c + c).join("");
    const [r, g, b] = [0, 2, 4].map((i) => {
      const c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return luminance > 0.4 ? "#111" : "#fff";
  }

  function looksLikeEmail(text) {
    return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(String(text || "").trim());
  }

  /**
   * A server-sent-events parser (the WHATWG event-stream grammar). Feed it byte chunks
   * (Uint8Array) or strings as they arrive, split anywhere; it calls
   * onEvent({event, data, id}) once per complete event. CR, LF and CRLF line ends (a CRLF may
   * be split across chunks), comments, "retry:" and a leading BOM are handled; an event cut
   * off by the end of the stream is dropped, as the spec says.
   */
  function createSseParser(onEvent) {
    const decoder = new TextDecoder("utf-8");
    let buffer = "";
    let skipLf = false;
    let atStart = true;
    let data = [];
    let event = "";
    let lastId = "";
    let retry = null;

    function line(text) {
      if (text === "") {
        if (data.length) onEvent({ event: event || "message", data: data.join("\n"), id: lastId });
        data = [];
        event = "";
        return;
      }
      if (text[0] === ":") return;
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && value.indexOf("\0") < 0) lastId = value;
      else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
    }

    function feed(text) {
      if (atStart && text) {
        if (text[0] === "\uFEFF") text = text.slice(1);
        atStart = text === "";
      }
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c === "\n" && skipLf && i === start && buffer === "") {
          skipLf = false;
          start = i + 1;
          continue;
        }
        skipLf = false;
        if (c === "\r" || c === "\n") {
          line(buffer + text.slice(start, i));
          buffer = "";
          start = i + 1;
          skipLf = c === "\r";
        }
      }
      buffer += text.slice(start);
    }

    return {
      push(chunk) {
        feed(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
      },
      end() {
        feed(decoder.decode());
        buffer = "";
        data = [];
        event = "";
      },
      get lastEventId() {
        return lastId;
      },
      get retry() {
        return retry;
      },
    };
  }

  /**
   * The entries of one chat, ordered and de-duplicated by the server's seq.
   * add() answers the index the entry took, or -1 when that seq was already there.
   * Seqs run 1, 2, 3… without gaps on the server, but the log can hold a later one before an
   * earlier one (our own message's answer comes back while the stream is down and an agent's
   * reply is missed): a resync asks from resumeSeq, the end of the unbroken run, never from
   * lastSeq, or the missed entry would be skipped for good.
   */
  function createEntryLog() {
    const list = [];
    const seen = new Set();
    let unbroken = 0;
    return {
      add(entry) {
        const seq = Number(entry && entry.seq);
        if (!Number.isFinite(seq) || seen.has(seq)) return -1;
        seen.add(seq);
        while (seen.has(unbroken + 1)) unbroken++;
        let i = list.length;
        while (i > 0 && list[i - 1].seq > seq) i--;
        list.splice(i, 0, entry);
        return i;
      },
      has(seq) {
        return seen.has(Number(seq));
      },
      get lastSeq() {
        return list.length ? list[list.length - 1].seq : 0;
      },
      get resumeSeq() {
        return unbroken;
      },
      get size() {
        return list.length;
      },
      list() {
        return list;
      },
    };
  }

  /**
   * A newer ChatView of the same chat. Read marks and last_seq never go back (views can
   * arrive out of order: a stream event and a slower GET), and "ended" is final.
   */
  function mergeChat(old, next) {
    if (!next) return old;
    if (!old || old.ticket_id !== next.ticket_id) return Object.assign({}, next);
    const merged = Object.assign({}, old, next);
    for (const key of ["last_seq", "visitor_read_seq", "agent_read_seq"]) {
      merged[key] = Math.max(Number(old[key]) || 0, Number(next[key]) || 0);
    }
    if (old.state === "ended") merged.state = "ended";
    return merged;
  }

  /** A Storage-like wrapper that never throws (private modes, disabled storage, quota). */
  function safeStorage(getBackend) {
    const memory = new Map();
    let backend = null;
    try {
      backend = getBackend();
      const probe = "otklik:probe";
      backend.setItem(probe, "1");
      backend.removeItem(probe);
    } catch (_) {
      backend = null;
    }
    return {
      get(key) {
        try {
          if (backend) return backend.getItem(key);
        } catch (_) {
          /* fall through to memory */
        }
        return memory.has(key) ? memory.get(key) : null;
      },
      set(key, value) {
        memory.set(key, value);
        try {
          if (backend) backend.setItem(key, value);
        } catch (_) {
          /* quota: memory keeps it for this page */
        }
      },
      remove(key) {
        memory.delete(key);
        try {
          if (backend) backend.removeItem(key);
        } catch (_) {
          /* ignore */
        }
      },
    };
  }

  /**
   * The outbox: messages written here before they are sent, in order. Text messages are
   * kept in storage (they survive a reload); a file cannot be, so file items live in memory
   * for the life of the page.
   */
  function createOutbox(storage, key) {
    let items = [];
    try {
      const stored = JSON.parse(storage.get(key) || "[]");
      if (Array.isArray(stored)) items = stored.filter((i) => i && i.client_id && typeof i.body === "string");
    } catch (_) {
      items = [];
    }
    function save() {
      const durable = items.filter((i) => !i.file);
      if (durable.length) storage.set(key, JSON.stringify(durable));
      else storage.remove(key);
    }
    return {
      add(item) {
        if (items.some((i) => i.client_id === item.client_id)) return;
        items.push(item);
        save();
      },
      remove(clientId) {
        const before = items.length;
        items = items.filter((i) => i.client_id !== clientId);
        if (items.length !== before) save();
        return items.length !== before;
      },
      update(clientId, patch) {
        const item = items.find((i) => i.client_id === clientId);
        if (item) {
          Object.assign(item, patch);
          save();
        }
      },
      has(clientId) {
        return items.some((i) => i.client_id === clientId);
      },
      first() {
        return items[0] || null;
      },
      items() {
        return items.slice();
      },
      clear() {
        items = [];
        save();
      },
    };
  }

  /**
   * Sends the outbox in order, one request at a time. send(item) resolves to
   *   {ok: true, ...}       acknowledged: the item leaves the outbox;
   *   {reject: true, ...}   refused for good (422, 413…): it leaves the outbox, the UI says why;
   *   {retry: true, after?} not now (network, 5xx, 429): it stays, retried after `after` ms
   *                         or the backoff, and at once on kick() (online, stream reconnect).
   * A throw counts as retry. onResult(item, result) is told of ok and reject.
   */
  function createSender(options) {
    const outbox = options.outbox;
    const schedule = options.schedule || ((fn, ms) => {
      const id = setTimeout(fn, ms);
      return () => clearTimeout(id);
    });
    let busy = false;
    let again = false;
    let attempt = 0;
    let cancelTimer = null;

    async function flush() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        for (;;) {
          const item = outbox.first();
          if (!item) {
            attempt = 0;
            break;
          }
          let result;
          try {
            result = await options.send(item);
          } catch (_) {
            result = { retry: true };
          }
          if (result && (result.ok || result.reject)) {
            outbox.remove(item.client_id);
            attempt = 0;
            if (options.onResult) options.onResult(item, result);
            continue;
          }
          const delay = result && result.after != null ? result.after : backoffDelay(attempt);
          attempt++;
          if (options.onRetry) options.onRetry(item, delay);
          if (cancelTimer) cancelTimer();
          cancelTimer = schedule(() => {
            cancelTimer = null;
            flush();
          }, delay);
          again = false;
          break;
        }
      } finally {
        busy = false;
      }
      if (again) {
        again = false;
        await flush();
      }
    }

    return {
      flush,
      /** Retry now, forgetting the backoff (the connection is back, or the visitor acted). */
      kick() {
        if (cancelTimer) {
          cancelTimer();
          cancelTimer = null;
        }
        attempt = 0;
        return flush();
      },
      get attempt() {
        return attempt;
      },
      get waiting() {
        return cancelTimer != null;
      },
    };
  }

  function uuid() {
    if (typeof crypto !== "undefined" && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
  }

  const MAX_FILE = 10 * 1024 * 1024;
  const FILE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"];
  const IMAGE_TYPES = FILE_TYPES.slice(0, 4);

  /** null when the file may be sent, else the i18n key of the reason. */
  function checkFile(file) {
    if (FILE_TYPES.indexOf(file.type) < 0) return "file_type";
    if (file.size > MAX_FILE) return "file_too_large";
    return null;
  }

  const logic = {
    I18N, pickLang, plural, format, formatDuration, backoffDelay, parseRetryAfter, safeColour,
    contrastText, looksLikeEmail, createSseParser, createEntryLog, mergeChat, safeStorage,
    createOutbox, createSender, checkFile, uuid,
  };

  // The node tests set globalThis.__otklikWidgetTest = {} before loading this file; the
  // widget then fills that object in and does not start. Nothing is defined otherwise.
  const testHook = globalThis.__otklikWidgetTest;
  if (testHook && typeof testHook === "object") {
    Object.assign(testHook, logic);
    return;
  }

  // ─────────────────────────── Boot ───────────────────────────
  if (typeof document === "undefined" || typeof window === "undefined") return;

  const script =
    document.currentScript ||
    document.querySelector('script[data-site][src$="widget.js"]') ||
    document.querySelector('script[data-site][src*="/widget.js"]');
  const SITE = script && script.getAttribute("data-site");
  if (!SITE) return;
  // the snippet was pasted twice
  if (document.querySelector("otklik-chat") || (window.Otklik && typeof window.Otklik.open === "function")) return;
  const BASE = new URL(script.src, location.href).origin;
  const API = BASE + "/widget/v1";
  const LANG = pickLang(
    script.getAttribute("data-lang"),
    document.documentElement.getAttribute("lang"),
    navigator.language
  );
  const STRINGS = I18N[LANG];

  function t(key, vars) {
    return format(STRINGS[key] != null ? STRINGS[key] : key, vars);
  }
  function tn(key, n) {
    const forms = STRINGS[key];
    return format(forms[plural(n, LANG)] || forms.other || forms.many, { n });
  }

  const local = safeStorage(() => window.localStorage);
  const session = safeStorage(() => window.sessionStorage);
  const KEY = "otklik:" + SITE + ":";
  const outbox = createOutbox(local, KEY + "outbox");

  const S = {
    site: null,
    token: local.get(KEY + "token"),
    visitor: null,
    fatal: null, // i18n key of a problem that stops the chat
    chat: null, // the chat on screen (live, offline or just ended)
    history: [],
    logs: new Map(), // ticket_id → entry log
    given: {}, // what the visitor typed in the pre-chat form
    ask: new Set(), // fields to ask even if known: the server refused what it had
    open: false,
    typing: null, // {name, until}
    queueAt: 0, // when chat.queue was received (ms)
    connected: false,
    failed: new Map(), // client_id → {item, reason}: refused messages, still shown
    readSent: 0,
  };

  // A token belongs to the identity it was created with: a different (or no) signed-in
  // customer on this browser must not see the previous one's chats, nor send their outbox.
  const identityNow = () => {
    const o = window.Otklik;
    const id = o && typeof o === "object" && o.identity;
    return id && typeof id === "object" && id.external_id != null ? id : null;
  };
  const identityKey = () => {
    const id = identityNow();
    return id ? "id:" + String(id.external_id) : "anonymous";
  };
  if (S.token && local.get(KEY + "who") !== identityKey()) {
    dropToken();
    outbox.clear();
  }

  function dropToken() {
    S.token = null;
    local.remove(KEY + "token");
    local.remove(KEY + "who");
  }

  function logOf(ticketId) {
    let log = S.logs.get(ticketId);
    if (!log) S.logs.set(ticketId, (log = createEntryLog()));
    return log;
  }

  const isLive = (chat) => !!chat && (chat.state === "queued" || chat.state === "active");
  const canWrite = () =>
    !S.fatal && !(S.chat && S.chat.state === "ended");
  const siteAnswering = () => !S.site || (S.site.open && S.site.agents_online);

  // ─────────────────────────── Network ───────────────────────────
  let visitorPromise = null;

  /** Resolves true once there is a token. */
  function ensureVisitor() {
    if (S.token) return Promise.resolve(true);
    if (!visitorPromise) {
      visitorPromise = (async () => {
        const identity = identityNow();
        const r = await request("POST", "/sites/" + encodeURIComponent(SITE) + "/visitors", identity ? { identity } : {}, { anonymous: true });
        if ((r.status === 201 || r.status === 200) && r.data && r.data.token) {
          S.token = r.data.token;
          local.set(KEY + "token", S.token);
          local.set(KEY + "who", identityKey());
          return true;
        }
        if (r.status === 403) {
          S.fatal = r.data && r.data.code === "identity_required" ? "identity_required" : "unavailable";
          render();
        }
        return false;
      })().finally(() => {
        visitorPromise = null;
      });
    }
    return visitorPromise;
  }

  /**
   * One call. Answers {status, data, retryAfter}; status 0 is a network failure. A 401
   * drops the token, creates a new visitor and tries once more.
   */
  async function request(method, path, body, options) {
    options = options || {};
    const headers = {};
    const token = S.token;
    if (!options.anonymous && token) headers.Authorization = "Bearer " + token;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res;
    let data = null;
    try {
      res = await fetch(API + path, { method, headers, body: payload, credentials: "omit", mode: "cors", cache: "no-store" });
      if (options.blob && res.ok) data = await res.blob();
      else {
        const text = await res.text();
        try {
          data = text ? JSON.parse(text) : null;
        } catch (_) {
          data = null;
        }
      }
    } catch (_) {
      return { status: 0, data: null, retryAfter: null };
    }
    if (res.status === 401 && !options.anonymous && !options.retried) {
      if (S.token === token) forgetVisitor(); // not a token another call has just replaced
      if (await ensureVisitor()) return request(method, path, body, Object.assign({}, options, { retried: true }));
    }
    return { status: res.status, data, retryAfter: parseRetryAfter(res.headers.get("Retry-After")) };
  }

  /** The token is no longer valid: its chats are gone for us; the outbox stays and is resent. */
  function forgetVisitor() {
    dropToken();
    S.visitor = null;
    S.chat = null;
    S.history = [];
    S.logs.clear();
    resetView();
    stopStream();
  }

  const problemText = (r) => (r.data && (r.data.detail || r.data.title)) || t("error");

  async function loadSite() {
    const r = await request("GET", "/sites/" + encodeURIComponent(SITE), undefined, { anonymous: true });
    if (r.status === 200 && r.data) {
      S.site = r.data;
      applyTheme();
      render();
      return true;
    }
    if (r.status === 403 || r.status === 404) console.warn("Otklik: chat site " + SITE + " is not available here (" + r.status + ")");
    return r.status !== 0 && r.status < 500 ? "final" : false;
  }

  let refreshing = null;
  let refreshAgain = false;
  /** Refetch state, and the entries of the chat on screen after the last seq we hold. */
  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        if (!S.token) break;
        const r = await request("GET", "/state");
        if (r.status !== 200 || !r.data) break;
        S.visitor = r.data.visitor || null;
        S.history = Array.isArray(r.data.history) ? r.data.history : [];
        const live = r.data.chat;
        if (S.chat && (!live || live.ticket_id !== S.chat.ticket_id)) {
          // the chat on screen is no longer live (it ended while we were away)
          const past = S.history.find((c) => c.ticket_id === S.chat.ticket_id);
          if (past) applyChat(past);
        }
        // the live chat: the first load, the same one, or one started in another tab
        if (live && (!S.chat || !isLive(S.chat) || S.chat.ticket_id === live.ticket_id)) showChat(live);
        if (S.chat) await loadEntries(S.chat.ticket_id);
        render();
      } while (refreshAgain);
    })().finally(() => {
      refreshing = null;
      syncStream();
    });
    return refreshing;
  }

  /** GET entries?after=<last seq> until fewer than 200 come back. */
  async function loadEntries(ticketId) {
    const log = logOf(ticketId);
    for (let pages = 0; pages < 50; pages++) {
      const r = await request("GET", "/chats/" + encodeURIComponent(ticketId) + "/entries?after=" + log.resumeSeq);
      if (r.status !== 200 || !r.data) return false;
      if (r.data.chat) applyChat(r.data.chat);
      const entries = Array.isArray(r.data.entries) ? r.data.entries : [];
      for (const e of entries) handleEntry(e, false);
      if (entries.length < 200) return true;
    }
    return true;
  }

  /** Puts `view` on screen (with what its log already holds), or updates it if it is there. */
  function showChat(view) {
    if (S.chat && S.chat.ticket_id === view.ticket_id) return applyChat(view);
    resetView();
    S.chat = mergeChat(null, view);
    S.queueAt = Date.now();
    const log = logOf(view.ticket_id);
    log.list().forEach((_, i) => insertEntry(ui.list, S.rendered, log, i));
  }

  /** A ChatView from an answer or the stream. */
  function applyChat(view) {
    if (!view) return;
    if (S.chat && S.chat.ticket_id === view.ticket_id) {
      const hadQueue = JSON.stringify(S.chat.queue);
      S.chat = mergeChat(S.chat, view);
      if (JSON.stringify(view.queue) !== hadQueue) S.queueAt = Date.now();
      if (S.chat.state === "ended") S.typing = null;
    } else if (isLive(view) && (!S.chat || !isLive(S.chat))) {
      showChat(view); // a chat started elsewhere (another tab)
    } else {
      // a view of another chat: keep the history list current
      S.history = S.history.map((c) => (c.ticket_id === view.ticket_id ? mergeChat(c, view) : c));
    }
  }

  // ── Sending ──
  const sender = createSender({
    outbox,
    send: sendItem,
    onResult(item, result) {
      if (result.reject) {
        if (item.extra && result.errors && result.errors.length) {
          // the pre-chat/offline form was refused: give it back with the reasons
          removePending(item.client_id);
          if (!ui.input.value) ui.input.value = item.body;
          formErrors(result.errors);
          showForm(true);
        } else {
          S.failed.set(item.client_id, { item, reason: result.reason || t("error") });
          renderPending();
        }
      }
      render();
    },
    onRetry() {
      render();
    },
  });

  function bodyOf(item) {
    return { client_id: item.client_id, body: item.body };
  }

  async function sendItem(item) {
    if (!(await ensureVisitor())) return S.fatal ? { reject: true, reason: t(S.fatal) } : { retry: true };
    const chat = S.chat;
    let r;
    if (item.file) {
      if (!chat) return { reject: true, reason: t("attach_first") };
      const form = new FormData();
      form.append("client_id", item.client_id);
      form.append("file", item.file, item.file.name);
      r = await request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/attachments", form);
    } else {
      if (chat && chat.state !== "ended" && !item.extra) {
        r = await request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/messages", bodyOf(item));
        if (r.status === 409 || r.status === 404) {
          // the chat ended (or belonged to a visitor that no longer exists): a new chat
          if (S.chat && S.chat.ticket_id === chat.ticket_id) S.chat = Object.assign({}, S.chat, { state: "ended" });
          r = null;
        }
      }
      if (!r) {
        // what we know of the visitor goes with a new chat: an offline chat needs the e-mail
        const known = S.visitor || {};
        const given = Object.assign({ name: known.name, email: known.email }, S.given, item.extra || {});
        const payload = Object.assign(bodyOf(item), { language: LANG });
        for (const f of ["name", "email", "order_number"]) if (given[f]) payload[f] = given[f];
        r = await request("POST", "/chats", payload);
      }
    }
    if (r.status === 200 || r.status === 201) {
      if (r.data && r.data.chat) {
        showChat(r.data.chat);
      }
      if (r.data && r.data.entry) handleEntry(r.data.entry, false);
      else removePending(item.client_id);
      if (item.extra) S.given = Object.assign({}, S.given, item.extra);
      syncStream();
      return { ok: true };
    }
    if (r.status === 0 || r.status === 429 || r.status === 408 || r.status >= 500 || r.status === 401) {
      return { retry: true, after: r.retryAfter };
    }
    return {
      reject: true,
      reason: problemText(r),
      errors: (r.data && Array.isArray(r.data.errors) && r.data.errors) || null,
    };
  }

  function queueText(text, extra) {
    const item = { client_id: uuid(), body: text, created: Date.now() };
    if (extra) item.extra = extra;
    outbox.add(item); // stored before anything is sent
    renderPending();
    stopTyping();
    sender.kick();
  }

  function queueFile(file) {
    const reason = checkFile(file);
    if (reason) return showError(t(reason));
    outbox.add({ client_id: uuid(), body: "", file, created: Date.now() });
    renderPending();
    sender.kick();
  }

  // ── Typing and read marks ──
  let typingOn = false;
  let typingSentAt = 0;
  function onInput() {
    autoGrow();
    const chat = S.chat;
    if (!chat || !isLive(chat)) return;
    const now = Date.now();
    if (ui.input.value.trim()) {
      if (!typingOn || now - typingSentAt >= 2000) {
        typingOn = true;
        typingSentAt = now;
        request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/typing", { typing: true });
      }
    } else stopTyping();
  }
  function stopTyping() {
    if (!typingOn || !S.chat) return;
    typingOn = false;
    request("POST", "/chats/" + encodeURIComponent(S.chat.ticket_id) + "/typing", { typing: false });
  }

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const chat = S.chat;
      if (!S.open || document.visibilityState !== "visible" || !chat || !S.token) return;
      const seq = logOf(chat.ticket_id).lastSeq;
      if (seq > Math.max(S.readSent, chat.visitor_read_seq || 0)) {
        S.readSent = seq;
        request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/read", { seq }).then((r) => {
          if (r.status === 204 || r.status === 200) applyChat(Object.assign({}, chat, { visitor_read_seq: seq }));
          else S.readSent = 0;
          renderBadge();
        });
      }
      renderBadge();
    }, 300);
  }

  function unreadCount() {
    const chat = S.chat;
    if (!chat) return 0;
    const seen = Math.max(chat.visitor_read_seq || 0, S.readSent);
    return logOf(chat.ticket_id).list().filter((e) => e.author === "agent" && e.kind === "message" && e.seq > seen).length;
  }

  // ── Live stream ──
  let streamCtl = null;
  let streamAttempt = 0;

  const wantStream = () => !!S.token && !S.fatal && (S.open || isLive(S.chat));

  function syncStream() {
    if (wantStream()) {
      if (!streamCtl) runStream();
    } else stopStream();
  }

  function stopStream() {
    if (streamCtl) streamCtl.stop();
    streamCtl = null;
  }

  function runStream() {
    let stopped = false;
    let abort = null;
    let wake = null;
    const ctl = {
      stop() {
        stopped = true;
        if (abort) abort.abort();
        if (wake) wake();
      },
    };
    streamCtl = ctl;
    const sleep = (ms) => new Promise((resolve) => {
      const id = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(id);
        resolve();
      };
    });
    (async () => {
      while (!stopped && wantStream()) {
        abort = new AbortController();
        let wait = null;
        try {
          const token = S.token;
          const res = await fetch(API + "/events", {
            headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" },
            credentials: "omit",
            cache: "no-store",
            signal: abort.signal,
          });
          if (res.status === 401) {
            if (S.token === token) forgetVisitor();
            if (!(await ensureVisitor())) break;
            refresh();
          } else if (res.status === 429) wait = parseRetryAfter(res.headers.get("Retry-After"));
          if (res.ok && res.body) await readStream(res.body, abort);
        } catch (_) {
          /* reconnect below */
        }
        S.connected = false;
        renderConnection();
        if (stopped) break;
        const base = wait != null ? wait : backoffDelay(streamAttempt++);
        await sleep(wait != null ? base : base * (0.8 + Math.random() * 0.2));
      }
      if (streamCtl === ctl) streamCtl = null;
    })();
  }

  async function readStream(body, abort) {
    const reader = body.getReader();
    let lastByte = Date.now();
    // the server pings every 20 s: silence for 45 s means a dead connection
    const watchdog = setInterval(() => {
      if (Date.now() - lastByte > 45000) abort.abort();
    }, 5000);
    const parser = createSseParser(onStreamEvent);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lastByte = Date.now();
        parser.push(value);
      }
      parser.end();
    } finally {
      clearInterval(watchdog);
    }
  }

  function onConnected() {
    streamAttempt = 0;
    S.connected = true;
    renderConnection();
    refresh();
    sender.kick();
  }

  function onStreamEvent(ev) {
    let data = null;
    try {
      data = ev.data ? JSON.parse(ev.data) : null;
    } catch (_) {
      return;
    }
    switch (ev.event) {
      case "hello":
        onConnected();
        break;
      case "entry":
        if (data) handleEntry(data, true);
        break;
      case "chat":
        if (data) {
          applyChat(data);
          render();
        }
        break;
      case "typing":
        if (data && S.chat && data.ticket_id === S.chat.ticket_id) {
          S.typing = data.typing ? { name: data.agent_name || t("agent"), until: Date.now() + 6000 } : null;
          renderTyping();
        }
        break;
      case "resync":
        refresh();
        sender.kick();
        break;
    }
  }

  /** A new entry (from an answer, a page of entries, or the stream), shown once by seq. */
  function handleEntry(entry, fromStream) {
    if (!entry || !entry.ticket_id) return;
    if (entry.client_id) {
      // the stream can bring our own message before the POST answers: it is acknowledged
      outbox.remove(entry.client_id);
      removePending(entry.client_id);
    }
    const log = logOf(entry.ticket_id);
    const index = log.add(entry);
    if (index < 0) return; // seen already
    const chat = S.chat;
    if (!chat || chat.ticket_id !== entry.ticket_id) {
      if (fromStream && (!chat || !isLive(chat))) refresh(); // a chat we do not show yet
      return;
    }
    if (entry.author === "agent") S.typing = null;
    if (entry.kind === "event" && entry.event === "ended") S.chat = Object.assign({}, chat, { state: "ended" });
    insertEntry(ui.list, S.rendered, log, index);
    render();
    markRead();
  }

  // ─────────────────────────── DOM ───────────────────────────
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const name in attrs || {}) {
      const value = attrs[name];
      if (value == null || value === false) continue;
      if (name === "text") el.textContent = value;
      else if (name === "class") el.className = value;
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) if (child != null && child !== false) el.append(child);
    return el;
  }

  function icon(path, size) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size || 24);
    svg.setAttribute("height", size || 24);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    svg.append(p);
    return svg;
  }
  const ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h10v-2H7zm0-3v2h10V7H7zm0 6v2h6v-2H7z";
  const ICON_CLOSE = "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z";
  const ICON_SEND = "M3 20.5 21 12 3 3.5v7l12 1.5-12 1.5z";
  const ICON_CLIP = "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z";

  const CSS = `
:host { all: initial !important; display: block !important; position: fixed !important;
  right: 0 !important; bottom: 0 !important; width: 0 !important; height: 0 !important;
  z-index: 2147483000 !important; visibility: visible !important; opacity: 1 !important; }
.w { --accent: #1f6feb; --on-accent: #fff; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1b1f24; text-align: left; direction: ltr; }
.w *, .w *::before, .w *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.launcher { position: fixed; right: 20px; bottom: 20px; width: 58px; height: 58px; border: 0; border-radius: 50%;
  padding: 0; display: grid; place-items: center; background: var(--accent); color: var(--on-accent);
  box-shadow: 0 4px 16px rgba(0,0,0,.25); }
.badge { position: absolute; top: -3px; right: -3px; min-width: 21px; height: 21px; padding: 0 6px; border-radius: 11px;
  background: #d1242f; color: #fff; font-size: 12px; font-weight: 700; line-height: 21px; text-align: center; }
.panel { position: fixed; right: 20px; bottom: 90px; width: 372px; height: min(620px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: #fff; border-radius: 14px; overflow: hidden;
  box-shadow: 0 10px 40px rgba(0,0,0,.28); }
.head { display: flex; align-items: center; gap: 10px; padding: 12px 14px; background: var(--accent); color: var(--on-accent); }
.head .t { flex: 1; min-width: 0; }
.head h2 { margin: 0; font-size: 16px; font-weight: 650; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { font-size: 12.5px; opacity: .92; display: flex; align-items: center; gap: 6px; }
.status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #9aa4ae; }
.status[data-state="online"]::before { background: #2da44e; }
.icon-btn { border: 0; background: transparent; color: inherit; padding: 6px; border-radius: 8px; display: grid; place-items: center; }
.body { flex: 1; overflow-y: auto; padding: 12px 14px; background: #f6f8fa; display: flex; flex-direction: column; gap: 8px; }
.notice { font-size: 13px; color: #57606a; text-align: center; }
.error { color: #a40e26; font-size: 13px; }
.banner { padding: 8px 12px; background: #fff8c5; color: #4d2d00; font-size: 13px; text-align: center; }
ol { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 8px; }
.msg { max-width: 82%; padding: 8px 11px; border-radius: 14px; background: #fff; box-shadow: 0 1px 1px rgba(0,0,0,.08);
  white-space: pre-wrap; overflow-wrap: anywhere; align-self: flex-start; }
.msg.me { align-self: flex-end; background: var(--accent); color: var(--on-accent); }
.msg.failed { background: #ffebe9; color: #1b1f24; }
.who { display: block; font-size: 12px; font-weight: 650; color: #57606a; margin-bottom: 2px; }
.meta { display: block; font-size: 11px; opacity: .75; text-align: right; margin-top: 2px; }
.mark { margin-left: 4px; letter-spacing: -2px; }
.sys { align-self: center; font-size: 12.5px; color: #57606a; text-align: center; }
.greeting { align-self: flex-start; }
.msg img { display: block; max-width: 100%; max-height: 220px; border-radius: 8px; margin-top: 4px; }
.msg a { color: inherit; }
.file { display: block; margin-top: 4px; }
.typing { font-size: 13px; color: #57606a; font-style: italic; }
.queue { align-self: center; font-size: 13px; background: #ddf4ff; color: #0a3069; padding: 4px 10px; border-radius: 10px; }
.history { font-size: 13px; }
.history > button, .link { border: 0; background: none; color: var(--accent); padding: 2px 0; text-decoration: underline; }
.history li > button { border: 0; background: none; padding: 2px 0; color: #24292f; text-decoration: underline; }
.past { border-left: 3px solid #d0d7de; padding-left: 8px; margin: 6px 0; }
.form { display: flex; flex-direction: column; gap: 8px; background: #fff; padding: 10px; border-radius: 10px; }
.form label { font-size: 13px; font-weight: 600; display: flex; flex-direction: column; gap: 3px; }
.form .opt { font-weight: 400; color: #57606a; }
.req { color: #a40e26; }
.form input, .ended input { padding: 7px 9px; border: 1px solid #d0d7de; border-radius: 8px; background: #fff; font-weight: 400; }
.form input[aria-invalid="true"] { border-color: #cf222e; }
.ended { display: flex; flex-direction: column; gap: 8px; align-items: center; text-align: center; }
.ended .row { display: flex; gap: 6px; }
.btn { border: 0; border-radius: 8px; padding: 8px 14px; background: var(--accent); color: var(--on-accent); font-weight: 600; }
.btn.ghost { background: #fff; color: #24292f; border: 1px solid #d0d7de; }
.composer { display: flex; align-items: flex-end; gap: 6px; padding: 8px 10px; border-top: 1px solid #d8dee4; background: #fff; }
.composer textarea { flex: 1; resize: none; border: 0; padding: 8px 4px; max-height: 120px; min-height: 38px; background: transparent; outline-offset: 0; }
.composer .icon-btn { color: #57606a; }
.composer .send { color: var(--accent); }
.composer .icon-btn:disabled { opacity: .4; cursor: default; }
.foot { display: flex; justify-content: center; padding: 4px 10px 8px; background: #fff; }
.foot .link { color: #57606a; font-size: 12.5px; }
@media (max-width: 480px) {
  .panel { inset: 0; width: auto; height: auto; border-radius: 0; }
  .w.is-open .launcher { display: none; }
}
@media (prefers-reduced-motion: no-preference) { .panel { transition: opacity .15s; } }
`;

  // Built once; text from the server or the visitor only ever lands in textContent.
  const ui = {};
  S.rendered = new Map(); // seq → element, for the chat on screen

  function build() {
    const host = document.createElement("otklik-chat");
    // An open shadow root: the end-to-end tests reach the widget through host.shadowRoot.
    // A closed one would not protect anything real: a script on the shop's page runs in the
    // same origin, can read localStorage (the token) and wrap fetch. What isolation is for
    // here is styles, and that both modes give.
    const root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
      // a constructed sheet is not an inline <style>, so a shop's strict CSP does not block it
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else root.append(h("style", { text: CSS }));

    ui.badge = h("span", { class: "badge", "data-testid": "unread", "aria-hidden": "true", hidden: true });
    ui.launcher = h("button", { type: "button", class: "launcher", "data-testid": "launcher", "aria-expanded": "false", "aria-label": t("open_chat"), onclick: () => (S.open ? close() : open()) }, icon(ICON_CHAT, 28), ui.badge);

    ui.title = h("h2", { id: "otk-title", "data-testid": "site-name" });
    ui.status = h("div", { class: "status", "data-testid": "status" });
    const closeBtn = h("button", { type: "button", class: "icon-btn", "data-testid": "close", "aria-label": t("close_chat"), onclick: () => close() }, icon(ICON_CLOSE, 20));

    ui.historyToggle = h("button", { type: "button", "aria-expanded": "false", onclick: toggleHistory });
    ui.historyList = h("ol", { hidden: true });
    ui.history = h("section", { class: "history", "data-testid": "history", hidden: true }, ui.historyToggle, ui.historyList);

    ui.greeting = h("li", { class: "msg greeting", "data-testid": "greeting", hidden: true });
    ui.list = h("ol", { "data-testid": "entries" }, ui.greeting);
    ui.pending = h("ol", { "data-testid": "pending" });
    ui.messages = h("div", { role: "log", "aria-live": "polite", "aria-relevant": "additions", "data-testid": "messages" }, ui.list, ui.pending);
    ui.queue = h("div", { class: "queue", "data-testid": "queue", hidden: true });
    ui.typing = h("div", { class: "typing", "data-testid": "typing", "aria-live": "polite", hidden: true });

    ui.fields = {};
    ui.offlineHint = h("p", { class: "notice", "data-testid": "offline", hidden: true, text: t("offline_hint") });
    const fieldBoxes = ["name", "email", "order_number"].map((name) => {
      const input = h("input", { name, type: name === "email" ? "email" : "text", autocomplete: name === "name" ? "name" : name === "email" ? "email" : "off", "data-testid": "prechat-" + name, "aria-describedby": "otk-err-" + name });
      const mark = h("span", { class: "req" });
      const hint = h("span", { class: "opt" });
      const error = h("span", { class: "error", id: "otk-err-" + name, "data-testid": "error-" + name, hidden: true });
      const label = h("label", {}, h("span", {}, t(name), " ", mark, hint), input, error);
      ui.fields[name] = { input, mark, hint, error, label };
      return label;
    });
    ui.form = h("div", { class: "form", "data-testid": "prechat", role: "group", "aria-label": t("message"), hidden: true }, ui.offlineHint, ...fieldBoxes);
    ui.offlineDone = h("p", { class: "notice", "data-testid": "offline-done", hidden: true });

    ui.endedText = h("p", { class: "notice", text: t("ev_ended") });
    ui.transcriptBtn = h("button", { type: "button", class: "btn ghost", "data-testid": "transcript", text: t("transcript"), onclick: () => transcript(false) });
    ui.transcriptEmail = h("input", { type: "email", autocomplete: "email", "data-testid": "transcript-email", "aria-label": t("email") });
    ui.transcriptSend = h("button", { type: "button", class: "btn", "data-testid": "transcript-send", text: t("transcript_send"), onclick: () => transcript(true) });
    ui.transcriptRow = h("div", { class: "row", hidden: true }, ui.transcriptEmail, ui.transcriptSend);
    ui.transcriptNote = h("p", { class: "notice", "data-testid": "transcript-status", "aria-live": "polite", hidden: true });
    ui.newChat = h("button", { type: "button", class: "btn", "data-testid": "new-chat", text: t("new_chat"), onclick: newChat });
    ui.ended = h("div", { class: "ended", "data-testid": "ended", hidden: true }, ui.endedText, ui.transcriptBtn, ui.transcriptRow, ui.transcriptNote, ui.newChat);

    ui.fatal = h("p", { class: "notice error", "data-testid": "error", role: "alert", hidden: true });
    ui.body = h("div", { class: "body" }, ui.history, ui.messages, ui.queue, ui.typing, ui.form, ui.offlineDone, ui.ended, ui.fatal);

    ui.file = h("input", { type: "file", accept: FILE_TYPES.join(","), "data-testid": "file", hidden: true, tabindex: "-1", onchange: () => {
      for (const f of Array.from(ui.file.files || [])) queueFile(f);
      ui.file.value = "";
    } });
    ui.attach = h("button", { type: "button", class: "icon-btn", "data-testid": "attach", "aria-label": t("attach"), title: t("attach"), onclick: () => ui.file.click() }, icon(ICON_CLIP, 20));
    ui.input = h("textarea", { id: "otk-input", rows: "1", "data-testid": "input", placeholder: t("placeholder"), "aria-describedby": "otk-err-body", oninput: onInput, onkeydown: onKey });
    ui.inputError = h("span", { class: "error", id: "otk-err-body", "data-testid": "error-body", hidden: true });
    ui.send = h("button", { type: "button", class: "icon-btn send", "data-testid": "send", "aria-label": t("send"), title: t("send"), onclick: submit }, icon(ICON_SEND, 22));
    ui.composer = h("div", { class: "composer" }, h("label", { class: "sr", for: "otk-input", text: t("message") }), ui.attach, ui.file, ui.input, ui.send);
    ui.banner = h("div", { class: "banner", "data-testid": "connection", role: "status", hidden: true, text: t("reconnecting") });
    ui.endBtn = h("button", { type: "button", class: "link", "data-testid": "end", text: t("end_chat"), onclick: endChat });
    ui.foot = h("div", { class: "foot", hidden: true }, ui.endBtn);

    ui.panel = h("div", { class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "otk-title", "data-testid": "panel", hidden: true, onkeydown: (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        close();
      }
    } },
      h("div", { class: "head" }, h("div", { class: "t" }, ui.title, ui.status), closeBtn),
      ui.banner, ui.body, h("div", {}, ui.inputError), ui.composer, ui.foot);

    ui.root = h("div", { class: "w", lang: LANG, "data-testid": "widget", hidden: true }, ui.panel, ui.launcher);
    root.append(ui.root);
    (document.body || document.documentElement).append(host);
  }

  function applyTheme() {
    const accent = safeColour(S.site && S.site.accent_colour);
    if (!accent) return;
    ui.root.style.setProperty("--accent", accent);
    ui.root.style.setProperty("--on-accent", contrastText(accent));
  }

  function resetView() {
    for (const el of S.rendered.values()) el.remove();
    S.rendered.clear();
    S.typing = null;
    S.readSent = 0;
    if (ui.ended) {
      ui.transcriptNote.hidden = true;
      ui.transcriptRow.hidden = true;
      ui.transcriptBtn.hidden = false;
    }
  }

  // ── Entries ──
  function timeOf(entry) {
    const d = new Date(entry.created_at);
    return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
  }

  function entryView(entry, chat) {
    if (entry.kind === "event" || entry.author === "system") {
      const key = EVENT_KEYS[entry.event];
      const text = key ? t(key, { name: entry.agent_name || t("agent") }) : entry.body || "";
      return h("li", { class: "sys", "data-testid": "entry", "data-seq": entry.seq, "data-author": "system", "data-event": entry.event || "" }, text);
    }
    const mine = entry.author === "visitor";
    const li = h("li", { class: mine ? "msg me" : "msg", "data-testid": "entry", "data-seq": entry.seq, "data-author": mine ? "visitor" : "agent" });
    if (!mine) li.append(h("span", { class: "who", text: entry.agent_name || t("agent") }));
    if (entry.body) li.append(h("span", { class: "text", text: entry.body }));
    for (const a of Array.isArray(entry.attachments) ? entry.attachments : []) li.append(attachmentView(entry, a));
    const meta = h("span", { class: "meta" }, timeOf(entry));
    li._entry = entry;
    if (mine && chat) {
      const mark = h("span", { class: "mark", "data-testid": "mark" });
      meta.append(mark);
      li._mark = mark;
      setMark(li, entry, chat);
    }
    li.append(meta);
    return li;
  }

  function setMark(li, entry, chat) {
    const read = (chat.agent_read_seq || 0) >= entry.seq;
    const state = read ? "read" : "sent";
    if (li._mark.getAttribute("data-state") === state) return;
    li._mark.setAttribute("data-state", state);
    li._mark.setAttribute("aria-label", t(read ? "mark_read" : "mark_sent"));
    li._mark.textContent = read ? "✓✓" : "✓";
  }

  const blobUrls = new Map(); // attachment id → object URL

  async function fetchAttachment(entry, a) {
    if (blobUrls.has(a.id)) return blobUrls.get(a.id);
    const r = await request("GET", "/chats/" + encodeURIComponent(entry.ticket_id) + "/attachments/" + encodeURIComponent(a.id), undefined, { blob: true });
    if (r.status !== 200 || !r.data) return null;
    const url = URL.createObjectURL(r.data);
    blobUrls.set(a.id, url);
    return url;
  }

  function attachmentView(entry, a) {
    const name = a.file_name || "file";
    const size = a.size ? " (" + formatSize(a.size) + ")" : "";
    if (IMAGE_TYPES.indexOf(a.content_type) >= 0) {
      const img = h("img", { alt: name, "data-testid": "attachment-image", loading: "lazy" });
      const link = h("a", { target: "_blank", rel: "noopener", "data-testid": "attachment" }, img);
      fetchAttachment(entry, a).then((url) => {
        if (url) {
          img.src = url;
          link.href = url;
        } else img.replaceWith(h("span", { class: "error", text: t("load_failed") + ": " + name }));
      });
      return link;
    }
    const link = h("a", { href: "#", class: "file", "data-testid": "attachment", download: name }, "📎 " + name + size);
    link.addEventListener("click", async (e) => {
      if (link.getAttribute("href") !== "#") return; // the object URL is there: let it download
      e.preventDefault();
      const url = await fetchAttachment(entry, a);
      if (!url) return showError(t("load_failed") + ": " + name);
      link.href = url;
      link.click();
    });
    return link;
  }

  function formatSize(bytes) {
    const mb = bytes / 1048576;
    const kb = bytes / 1024;
    const n = new Intl.NumberFormat(LANG, { maximumFractionDigits: 1 });
    if (LANG === "ru") return mb >= 1 ? n.format(mb) + " МБ" : n.format(Math.max(1, kb)) + " КБ";
    return mb >= 1 ? n.format(mb) + " MB" : n.format(Math.max(1, kb)) + " KB";
  }

  /** Puts log entry `index` into `list` in seq order (the greeting stays first). */
  function insertEntry(list, rendered, log, index) {
    const entry = log.list()[index];
    const el = entryView(entry, list === ui.list ? S.chat : null);
    rendered.set(entry.seq, el);
    const next = log.list()[index + 1];
    const before = next && rendered.get(next.seq);
    if (before) list.insertBefore(el, before);
    else list.append(el);
  }

  function renderPending() {
    const items = outbox.items();
    const keep = new Set(items.map((i) => i.client_id).concat(Array.from(S.failed.keys())));
    for (const li of Array.from(ui.pending.children)) if (!keep.has(li.getAttribute("data-client-id"))) li.remove();
    const have = new Set(Array.from(ui.pending.children, (li) => li.getAttribute("data-client-id")));
    for (const item of items) {
      if (have.has(item.client_id)) continue;
      const mark = h("span", { class: "mark", "data-testid": "mark", "data-state": "pending", "aria-label": t("mark_pending"), text: "⏱" });
      ui.pending.append(h("li", { class: "msg me", "data-testid": "entry", "data-pending": "true", "data-client-id": item.client_id, "data-author": "visitor" },
        h("span", { class: "text", text: item.file ? "📎 " + item.file.name : item.body }),
        h("span", { class: "meta" }, mark)));
    }
    for (const [clientId, failed] of S.failed) {
      const li = Array.from(ui.pending.children).find((el) => el.getAttribute("data-client-id") === clientId);
      const text = t("mark_failed", { reason: failed.reason });
      if (li && li.getAttribute("data-failed") !== "true") {
        li.setAttribute("data-failed", "true");
        li.className = "msg me failed";
        const mark = li.querySelector(".mark");
        mark.setAttribute("data-state", "failed");
        mark.setAttribute("aria-label", text);
        mark.textContent = "✕";
        li.append(h("span", { class: "meta", text }));
      }
    }
    scrollDown();
  }

  function removePending(clientId) {
    for (const li of Array.from(ui.pending.children)) if (li.getAttribute("data-client-id") === clientId) li.remove();
  }

  // ── Everything else on screen ──
  function render() {
    if (!ui.root) return;
    const site = S.site;
    ui.root.hidden = !site;
    if (!site) return;
    const chat = S.chat;
    ui.title.textContent = site.name || "";
    const answering = siteAnswering();
    const agentName = chat && isLive(chat) && chat.agent && chat.agent.name;
    ui.status.setAttribute("data-state", answering ? "online" : "offline");
    ui.status.textContent = agentName ? t("agent_status", { name: agentName }) : t(answering ? "online" : "offline");

    ui.greeting.textContent = site.greeting || "";
    ui.greeting.hidden = !site.greeting || (!!chat && chat.state === "offline");

    ui.fatal.hidden = !S.fatal;
    ui.fatal.textContent = S.fatal ? t(S.fatal) : "";

    const ended = !!chat && chat.state === "ended";
    ui.ended.hidden = !ended;
    ui.composer.hidden = ended || !!S.fatal;
    ui.foot.hidden = !chat || !isLive(chat);
    ui.attach.disabled = !chat || ended;
    ui.attach.title = ui.attach.disabled ? t("attach_first") : t("attach");

    const offlineChat = !!chat && chat.state === "offline";
    ui.offlineDone.hidden = !offlineChat;
    const email = S.given.email || (S.visitor && S.visitor.email);
    ui.offlineDone.textContent = email ? t("offline_done", { email }) : t("offline_done_noemail");

    showForm(!chat && !S.fatal && needsForm());
    renderQueue();
    renderTyping();
    renderHistory();
    renderBadge();
    renderConnection();
    if (chat) for (const li of S.rendered.values()) if (li._mark) setMark(li, li._entry, chat);
  }

  /** The pre-chat form: the site's questions, and the e-mail when nobody can answer. */
  function needsForm() {
    if (outbox.items().some((i) => i.extra)) return false; // the form was sent, waiting for it
    const offline = !siteAnswering();
    const known = S.visitor || {};
    const pre = (S.site && S.site.pre_chat) || {};
    let any = false;
    for (const name of ["name", "email", "order_number"]) {
      let mode = pre[name] || "hidden";
      if (name === "email" && offline) mode = "required";
      if ((name === "name" || name === "email") && known[name] && mode !== "hidden" && !S.ask.has(name)) mode = "known";
      if (S.ask.has(name) && mode === "hidden") mode = "optional";
      const f = ui.fields[name];
      f.label.hidden = mode === "hidden" || mode === "known";
      f.input.required = mode === "required";
      f.input.setAttribute("aria-required", mode === "required" ? "true" : "false");
      f.mark.textContent = mode === "required" ? "*" : "";
      f.mark.title = mode === "required" ? t("required_mark") : "";
      f.hint.textContent = mode === "optional" ? t("optional") : "";
      f.mode = mode;
      if (!f.label.hidden) any = true;
    }
    ui.offlineHint.hidden = !offline;
    return any || offline;
  }

  function showForm(show) {
    ui.form.hidden = !show;
    ui.form.setAttribute("data-mode", siteAnswering() ? "online" : "offline");
  }

  function formErrors(errors) {
    for (const name in ui.fields) setFieldError(name, null);
    setFieldError("body", null);
    for (const e of errors || []) {
      const name = e.field === "order" ? "order_number" : e.field;
      if (ui.fields[name]) S.ask.add(name);
      setFieldError(name, e.message || t("error"));
    }
    needsForm();
  }

  function setFieldError(name, message) {
    const f = name === "body" ? { input: ui.input, error: ui.inputError } : ui.fields[name];
    if (!f) {
      if (message) showError(message);
      return;
    }
    f.error.hidden = !message;
    f.error.textContent = message || "";
    if (message) f.input.setAttribute("aria-invalid", "true");
    else f.input.removeAttribute("aria-invalid");
  }

  let queueTimer = null;
  function renderQueue() {
    const q = S.chat && S.chat.state === "queued" && S.chat.queue;
    ui.queue.hidden = !q;
    if (q) {
      const wait = (Number(q.waiting_seconds) || 0) + (Date.now() - S.queueAt) / 1000;
      ui.queue.textContent = t("queue", { position: q.position, wait: formatDuration(wait) });
    }
    const tick = !!q || !!S.typing;
    if (tick && !queueTimer) queueTimer = setInterval(() => {
      renderQueue();
      renderTyping();
    }, 1000);
    if (!tick && queueTimer) {
      clearInterval(queueTimer);
      queueTimer = null;
    }
  }

  function renderTyping() {
    if (S.typing && S.typing.until < Date.now()) S.typing = null;
    ui.typing.hidden = !S.typing;
    const text = S.typing ? t("typing", { name: S.typing.name }) : "";
    if (ui.typing.textContent !== text) ui.typing.textContent = text;
  }

  function renderBadge() {
    const n = S.open ? 0 : unreadCount();
    ui.badge.hidden = n === 0;
    ui.badge.textContent = n > 99 ? "99+" : String(n);
    ui.launcher.setAttribute("aria-label", n ? t("open_chat") + ", " + tn("unread", n) : t("open_chat"));
  }

  function renderConnection() {
    const down = (S.open && navigator.onLine === false) || (streamCtl && !S.connected && streamAttempt > 1) || (outbox.first() && sender.waiting);
    ui.banner.hidden = !down;
  }

  const pastOpen = new Set();
  function renderHistory() {
    const past = S.history.filter((c) => !S.chat || c.ticket_id !== S.chat.ticket_id);
    ui.history.hidden = past.length === 0;
    ui.historyToggle.textContent = tn("history", past.length);
    const have = new Map(Array.from(ui.historyList.children, (li) => [li.getAttribute("data-ticket"), li]));
    const keep = new Set();
    for (const c of past) {
      keep.add(c.ticket_id);
      let li = have.get(c.ticket_id);
      if (!li) {
        const box = h("ol", { class: "past", hidden: true, "data-testid": "history-entries" });
        const btn = h("button", { type: "button", "aria-expanded": "false", text: t("chat_number", { number: c.number }) + (c.agent && c.agent.name ? " · " + c.agent.name : "") });
        btn.addEventListener("click", () => togglePast(c, btn, box));
        li = h("li", { "data-ticket": c.ticket_id, "data-testid": "history-chat" }, btn, box);
      }
      ui.historyList.append(li); // newest first, as the server lists them
    }
    for (const [id, li] of have) if (!keep.has(id)) li.remove();
  }

  function toggleHistory() {
    const show = ui.historyList.hidden;
    ui.historyList.hidden = !show;
    ui.historyToggle.setAttribute("aria-expanded", String(show));
  }

  async function togglePast(chat, btn, box) {
    const show = box.hidden;
    box.hidden = !show;
    btn.setAttribute("aria-expanded", String(show));
    if (!show || pastOpen.has(chat.ticket_id)) return;
    pastOpen.add(chat.ticket_id);
    const log = logOf(chat.ticket_id);
    if (!(await loadEntries(chat.ticket_id))) {
      pastOpen.delete(chat.ticket_id);
      box.replaceChildren(h("li", { class: "error", text: t("load_failed") }));
      return;
    }
    box.replaceChildren();
    const rendered = new Map();
    log.list().forEach((_, i) => insertEntry(box, rendered, log, i));
  }

  // ── Actions ──
  function onKey(e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  }

  function autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 120) + "px";
  }

  function submit() {
    const text = ui.input.value.trim();
    setFieldError("body", null);
    if (!ui.form.hidden) {
      let extra = {};
      let ok = true;
      for (const name in ui.fields) {
        const f = ui.fields[name];
        if (f.label.hidden) continue;
        const value = f.input.value.trim();
        let error = null;
        if (f.mode === "required" && !value) error = t("field_required");
        else if (name === "email" && value && !looksLikeEmail(value)) error = t("email_invalid");
        setFieldError(name, error);
        if (error) {
          if (ok) f.input.focus();
          ok = false;
        }
        if (value) extra[name] = value;
      }
      if (!text) {
        setFieldError("body", t("field_required"));
        if (ok) ui.input.focus();
        return;
      }
      if (!ok) return;
      queueText(text, extra);
      ui.form.hidden = true;
    } else {
      if (!text) return;
      queueText(text, null);
    }
    ui.input.value = "";
    autoGrow();
  }

  async function endChat() {
    const chat = S.chat;
    if (!chat) return;
    const r = await request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/end");
    if (r.status === 200 && r.data && r.data.chat) {
      applyChat(r.data.chat);
      render();
      loadEntries(chat.ticket_id);
    } else showError(problemText(r));
  }

  async function transcript(withEmail) {
    const chat = S.chat;
    if (!chat) return;
    const known = S.given.email || (S.visitor && S.visitor.email);
    if (!withEmail && !known) {
      ui.transcriptRow.hidden = false;
      ui.transcriptBtn.hidden = true;
      ui.transcriptEmail.focus();
      return;
    }
    const email = withEmail ? ui.transcriptEmail.value.trim() : null;
    if (withEmail && !looksLikeEmail(email)) {
      ui.transcriptEmail.setAttribute("aria-invalid", "true");
      return showTranscriptNote(t("email_invalid"));
    }
    const r = await request("POST", "/chats/" + encodeURIComponent(chat.ticket_id) + "/transcript", email ? { email } : {});
    if (r.status === 202 || r.status === 200 || r.status === 204) {
      ui.transcriptRow.hidden = true;
      ui.transcriptBtn.hidden = true;
      showTranscriptNote(email || known ? t("transcript_sent", { email: email || known }) : t("transcript_sent_noemail"));
    } else if (r.status === 422) {
      ui.transcriptRow.hidden = false;
      ui.transcriptBtn.hidden = true;
      const e = r.data && Array.isArray(r.data.errors) && r.data.errors[0];
      showTranscriptNote((e && e.message) || problemText(r));
    } else showTranscriptNote(problemText(r));
  }

  function showTranscriptNote(text) {
    ui.transcriptNote.hidden = false;
    ui.transcriptNote.textContent = text;
  }

  function newChat() {
    resetView();
    S.chat = null;
    S.failed.clear();
    renderPending();
    render();
    ui.input.focus();
    refresh(); // the chat that ended moves to the history
  }

  let errorTimer = null;
  function showError(text) {
    ui.inputError.hidden = false;
    ui.inputError.textContent = text;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => {
      ui.inputError.hidden = true;
    }, 6000);
  }

  function scrollDown() {
    ui.body.scrollTop = ui.body.scrollHeight;
  }

  function open() {
    if (!ui.root) {
      S.wantOpen = true;
      return;
    }
    S.open = true;
    session.set(KEY + "open", "1");
    ui.panel.hidden = false;
    ui.root.classList.add("is-open");
    ui.launcher.setAttribute("aria-expanded", "true");
    render();
    scrollDown();
    (ui.form.hidden ? ui.input : ui.form.querySelector("label:not([hidden]) input") || ui.input).focus();
    loadSite();
    // with no token and no signed-in customer there is nothing to show yet: the visitor is
    // created with the first message, so browsing visitors cost the server nothing
    if (S.token || identityNow()) ensureVisitor().then((ok) => ok && refresh());
    syncStream();
    markRead();
  }

  function close() {
    if (!ui.root) {
      S.wantOpen = false;
      return;
    }
    const wasOpen = S.open;
    S.open = false;
    session.remove(KEY + "open");
    ui.panel.hidden = true;
    ui.root.classList.remove("is-open");
    ui.launcher.setAttribute("aria-expanded", "false");
    stopTyping();
    render();
    syncStream();
    if (wasOpen) ui.launcher.focus();
  }

  // ── window.Otklik: keep what the shop put there, add open() and close() ──
  const api = window.Otklik && typeof window.Otklik === "object" ? window.Otklik : {};
  api.open = open;
  api.close = close;
  window.Otklik = api;

  async function start() {
    if (!document.body) await new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve, { once: true }));
    build();
    for (let attempt = 0; ; attempt++) {
      const ok = await loadSite();
      if (ok === true) break;
      if (ok === "final" || attempt >= 5) return;
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt)));
    }
    renderPending();
    window.addEventListener("online", () => {
      renderConnection();
      sender.kick();
      if (streamCtl) {
        stopStream();
        syncStream();
      }
    });
    window.addEventListener("offline", renderConnection);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") markRead();
    });
    if (S.token) await refresh();
    if (outbox.first()) sender.kick();
    if (S.wantOpen || (S.wantOpen !== false && session.get(KEY + "open"))) open();
    syncStream();
  }

  start();
})();
