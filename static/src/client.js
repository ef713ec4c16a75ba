// The reference web-chat client a shop embeds: it records the page with rrweb and streams the
// recording and the chat to the ingest socket, in the protocol of docs/protocol.md.
//
//   <script src="/static/dist/client.js"></script>
//   <script>ConversationReplayClient.start({ url: "wss://…/ws/ingest/", key: "…" })</script>
//
// Nothing is forgotten until the server has said it is stored: every frame stays in an outbox
// until a ping sent after it is answered, and the outbox, the conversation's uuid and the next
// event_index live in sessionStorage, so a reconnect or a page navigation re-sends what was not
// acknowledged (the server ignores what it already has) and loses nothing.
import { getRecordConsolePlugin } from "@rrweb/rrweb-plugin-console-record";
import { record } from "rrweb";
import { getRecordNetworkPlugin } from "./recorders/network.js";

const PART_BYTES = 32 * 1024;
const CLOSE_UNAUTHORISED = 4401;
const CLOSE_FLOOD = 4429;
const CLOSE_TOO_BIG = 1009;
const STATE_VERSION = 1;

const DEFAULTS = {
  url: null, // ws(s)://host/ws/ingest/; defaults to this page's host
  key: "",
  conversationUuid: null, // a uuid to use for a new conversation; a fresh one otherwise
  customer: {}, // { name, email }
  merchantId: "",
  storageKey: "conversation-replay",
  maskAllInputs: true,
  checkoutEveryNms: 60_000, // a full snapshot every minute, so staff can seek quickly
  flushMs: 1000, // rrweb events are sent in batches this often
  pingMs: 3000,
  pingTimeoutMs: 10_000, // an unanswered ping this old means a dead connection
  backoffMinMs: 500,
  backoffMaxMs: 15_000,
  typingMs: 1500, // at most one typing event this often
  // The server's hard cap on one frame (REPLAY_HARD_MAX_FRAME_BYTES): a larger frame is never
  // sent, and one the server refuses with 1009 is not sent again; both are kept aside.
  maxFrameBytes: 16 * 1024 * 1024,
  recordOptions: {}, // passed on to rrweb's record()
  // Console levels recorded with rrweb's console plugin (uncaught errors come as "error");
  // [] records none. Staff see them, and failed requests, in the replay's Console panel.
  consoleLevels: ["error", "warn", "assert"],
  recordNetworkErrors: true, // failed fetch and XHR requests (network error or status >= 400)
  onChange: null, // called with the client when its status or outbox changes
  onEnvelope: null, // called with any envelope the server sends other than a ping answer
};

// --- Pure helpers ------------------------------------------------------------------------

function uuid4() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Split `text` into pieces of at most `maxBytes` UTF-8 bytes, never inside a code point. */
function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

export function splitUtf8(text, maxBytes = PART_BYTES) {
  if (text.length * 3 <= maxBytes) return [text];
  const parts = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i);
    const width = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + width > maxBytes) {
      parts.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += width;
    i += code > 0xffff ? 2 : 1;
  }
  parts.push(text.slice(start));
  return parts;
}

// JSON.stringify writes a lone surrogate as a \udXXX escape (and only a lone one); the server
// refuses those, so they become U+FFFD. An escaped backslash before "u" is left alone.
const LONE_SURROGATE_ESCAPE = /(^|[^\\])((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;

export function eventsJson(events) {
  const text = JSON.stringify(events);
  return text.includes("\\u") ? text.replace(LONE_SURROGATE_ESCAPE, "$1$2\\ufffd") : text;
}

const encoder = new TextEncoder();

function hex(bytes) {
  let out = "";
  for (const b of new Uint8Array(bytes)) out += b.toString(16).padStart(2, "0");
  return out;
}

// SHA-256 for pages outside a secure context, where crypto.subtle is missing (plain http).
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Sync(bytes) {
  const length = bytes.length;
  const padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 =
        (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((value, i) => outView.setUint32(i * 4, value));
  return hex(out);
}

/** Lowercase hex SHA-256 of the UTF-8 bytes of `text`. */
export async function sha256(text) {
  const bytes = encoder.encode(text);
  if (globalThis.crypto && crypto.subtle) return hex(await crypto.subtle.digest("SHA-256", bytes));
  return sha256Sync(bytes);
}

/** The frames of one rrweb batch: one per part of at most 32 KiB, with both checksums. */
export async function batchFrames(conversationUuid, eventIndex, kind, events) {
  const text = eventsJson(events);
  const parts = splitUtf8(text);
  const total = await sha256(text);
  const frames = [];
  for (let i = 0; i < parts.length; i++) {
    frames.push({
      type: "event",
      event_type: "rrweb",
      conversation_uuid: conversationUuid,
      event_rrweb: {
        type: kind,
        event_index: eventIndex,
        data: parts[i],
        data_part: i + 1,
        data_total_parts: parts.length,
        data_sha256: parts.length === 1 ? total : await sha256(parts[i]),
        data_total_sha256: total,
      },
    });
  }
  return frames;
}

// --- The client --------------------------------------------------------------------------

class Client {
  constructor(options) {
    this.options = { ...DEFAULTS, ...options };
    this.url = this.options.url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/ingest/`;
    this.status = "connecting";
    this.socket = null;
    this.buffer = []; // rrweb events not yet in a batch
    this.kind = "init"; // the first batch of every page load starts a segment
    this.building = Promise.resolve();
    this.pendingPings = []; // [{mark, sentAt}] answered in order
    this.backoff = this.options.backoffMinMs;
    this.timers = [];
    this.stopped = false;
    this.lastTyping = { value: "", at: 0, timer: null };
    this.state = this.restore() || this.fresh();
    this.save();
  }

  // State ------------------------------------------------------------------------------

  fresh() {
    const customerUuid = uuid4();
    const { name, email } = this.options.customer || {};
    const state = {
      v: STATE_VERSION,
      key: this.options.key,
      conversationUuid: this.options.conversationUuid || uuid4(),
      customer: {
        arn: `arn:customer:${customerUuid}`,
        uuid: customerUuid,
        name: name || `Guest ${customerUuid.slice(0, 4).toUpperCase()}`,
        email: email || null,
      },
      nextEventIndex: 0,
      nextSeq: 1,
      outbox: [], // [{seq, text, message?}] in order
      unbuilt: [], // [{index, kind, events}] batches numbered but not yet in the outbox
      keptAside: [], // [{seq, bytes, reason, message?}] frames the server will never take
    };
    this.state = state;
    const now = new Date().toISOString();
    const participant = {
      conversation_participant_arn: state.customer.arn,
      conversation_participant_name: state.customer.name,
      conversation_participant_uuid: state.customer.uuid,
      email: state.customer.email,
      joined_dts: now,
      language_iso_code: navigator.language || null,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || null,
      status: "active",
    };
    const uuid = state.conversationUuid;
    this.enqueue({ type: "event", event_type: "webchat start conversation", conversation_uuid: uuid });
    this.enqueue({
      type: "event",
      event_type: "new conversation",
      conversation_uuid: uuid,
      event_new_conversation: {
        conversation_uuid: uuid,
        merchant_id: this.options.merchantId || null,
        medium: "websocket",
        start_dts: now,
        closed: false,
        visible: true,
        message_count: 0,
        unread_messages: false,
        participants: [participant],
      },
    });
    return state;
  }

  restore() {
    let state;
    try {
      state = JSON.parse(sessionStorage.getItem(this.options.storageKey) || "null");
    } catch {
      return null;
    }
    // The tab's conversation goes on across page loads, whatever uuid a new page offers.
    if (!state || state.v !== STATE_VERSION || state.key !== this.options.key) return null;
    return state;
  }

  save() {
    try {
      sessionStorage.setItem(this.options.storageKey, JSON.stringify(this.state));
    } catch {
      // Storage full or disabled: the outbox still lives in memory for this page.
    }
  }

  // Outbox ------------------------------------------------------------------------------

  enqueue(frame, meta = {}) {
    const entry = { seq: this.state.nextSeq++, text: JSON.stringify(frame), ...meta };
    const bytes = utf8Length(entry.text);
    if (bytes > this.options.maxFrameBytes) {
      this.keepAside(entry, `${bytes} bytes, over the server's limit of ${this.options.maxFrameBytes}`);
      return entry;
    }
    this.state.outbox.push(entry);
    this.save();
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(entry.text);
    this.changed();
    return entry;
  }

  /** Set a frame aside for good, visibly: re-sending it could only fail the same way. */
  keepAside(entry, reason) {
    this.state.outbox = this.state.outbox.filter((e) => e !== entry);
    const kept = { seq: entry.seq, bytes: utf8Length(entry.text), reason };
    if (entry.message) kept.message = entry.message;
    (this.state.keptAside ||= []).push(kept);
    console.warn(`conversation replay: a frame was kept aside and will not be sent: ${reason}`);
    this.save();
    this.changed();
  }

  /** Frames set aside for good, with why: [{seq, bytes, reason, message?}]. */
  keptAside() {
    return this.state.keptAside || [];
  }

  acknowledge(mark) {
    const before = this.state.outbox.length;
    this.state.outbox = this.state.outbox.filter((entry) => entry.seq > mark);
    if (this.state.outbox.length !== before) {
      this.save();
      this.changed();
    }
  }

  /** Frames, and batches still being prepared, the server has not acknowledged yet. */
  pending() {
    return this.state.outbox.length + this.state.unbuilt.length;
  }

  /** Uuids of chat messages not yet acknowledged. */
  pendingMessages() {
    return new Set(this.state.outbox.filter((e) => e.message).map((e) => e.message));
  }

  changed() {
    if (this.started && this.options.onChange) {
      try {
        this.options.onChange(this);
      } catch (error) {
        console.error(error);
      }
    }
  }

  setStatus(status) {
    if (this.status !== status) {
      this.status = status;
      this.changed();
    }
  }

  // Recording ---------------------------------------------------------------------------

  startRecording() {
    // Batches numbered on an earlier page but never sent go first, in their order.
    for (const batch of this.state.unbuilt) this.build(batch);
    this.stopRecording = record({
      maskAllInputs: this.options.maskAllInputs,
      checkoutEveryNms: this.options.checkoutEveryNms,
      ...this.options.recordOptions,
      plugins: this.recordPlugins(),
      emit: (event, isCheckout) => {
        // An init batch opens with Meta and FullSnapshot: the DomContentLoaded and Load
        // markers rrweb may emit before them carry nothing a replay needs.
        if (!this.sawMeta && event.type !== 4) return;
        if (event.type === 4) this.sawMeta = true;
        // A periodic full snapshot starts a batch of its own, where a seek can begin.
        if (isCheckout && event.type === 4) this.flush();
        this.buffer.push(event);
      },
    });
    this.every(this.options.flushMs, () => this.flush());
  }

  /** rrweb record plugins: console entries and failed requests, then any of recordOptions. */
  recordPlugins() {
    const plugins = [];
    const levels = this.options.consoleLevels || [];
    // Messages are cut at 1,000 characters: a logged object can be the size of the page.
    const stringifyOptions = { stringLengthLimit: 1000, numOfKeysLimit: 50, depthOfLimit: 4 };
    if (levels.length) plugins.push(getRecordConsolePlugin({ level: levels, stringifyOptions }));
    if (this.options.recordNetworkErrors) plugins.push(getRecordNetworkPlugin());
    return [...plugins, ...(this.options.recordOptions.plugins || [])];
  }

  flush() {
    if (!this.buffer.length) return;
    const batch = { index: this.state.nextEventIndex++, kind: this.kind, events: this.buffer };
    this.buffer = [];
    this.kind = "events";
    this.state.unbuilt.push(batch);
    this.save();
    this.build(batch);
  }

  build(batch) {
    const uuid = this.state.conversationUuid;
    this.building = this.building
      .then(() => batchFrames(uuid, batch.index, batch.kind, batch.events))
      .then((frames) => {
        if (!this.state.unbuilt.includes(batch)) return; // already handed to the next page
        this.state.unbuilt = this.state.unbuilt.filter((b) => b !== batch);
        for (const frame of frames) this.enqueue(frame);
        this.pingSoon();
      })
      .catch((error) => console.error("conversation replay: could not prepare a batch", error));
  }

  // Chat --------------------------------------------------------------------------------

  /** Send a chat message from the customer; returns the message as sent. */
  sendMessage(body) {
    const now = Date.now();
    const message = {
      conversation_message_uuid: uuid4(),
      client_message_id: uuid4(),
      author_conversation_participant_arn: this.state.customer.arn,
      author_conversation_participant_name: this.state.customer.name,
      body,
      message_dts: new Date(now).toISOString(),
      message_epoch: now,
      type: "message",
      media_urls: [],
    };
    this.enqueue(
      { type: "message", conversation_uuid: this.state.conversationUuid, message },
      { message: message.conversation_message_uuid },
    );
    // What was being typed is now the message: no typing event for it may follow.
    clearTimeout(this.lastTyping.timer);
    Object.assign(this.lastTyping, { value: "", pending: "", timer: null });
    this.pingSoon();
    return message;
  }

  /** Tell the agent what the customer is typing; sent at most every `typingMs`. */
  typing(value) {
    const typing = this.lastTyping;
    typing.pending = value;
    if (typing.timer) return;
    // A moment's wait first, so the agent sees words rather than a first letter.
    const wait = Math.max(500, typing.at + this.options.typingMs - Date.now());
    typing.timer = setTimeout(() => {
      typing.timer = null;
      if (!typing.pending || typing.pending === typing.value) return;
      typing.value = typing.pending;
      typing.at = Date.now();
      this.enqueue({
        type: "event",
        event_type: "typing",
        conversation_uuid: this.state.conversationUuid,
        event_typing: {
          author_conversation_participant_arn: this.state.customer.arn,
          author_conversation_participant_name: this.state.customer.name,
          value: typing.value,
        },
      });
    }, wait);
  }

  // Connection --------------------------------------------------------------------------

  connect() {
    if (this.stopped) return;
    this.setStatus(this.status === "online" ? "connecting" : this.status);
    const separator = this.url.includes("?") ? "&" : "?";
    const socket = new WebSocket(`${this.url}${separator}key=${encodeURIComponent(this.options.key)}`);
    this.socket = socket;
    this.pendingPings = [];
    socket.onopen = () => {
      this.backoff = this.options.backoffMinMs;
      this.setStatus("online");
      // Everything unacknowledged goes again; the server keeps one copy of each.
      for (const entry of this.state.outbox) socket.send(entry.text);
      this.ping();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.pendingPings = [];
      if (event.code === CLOSE_UNAUTHORISED) {
        this.setStatus("unauthorised"); // a wrong key stays wrong: do not retry
        return;
      }
      this.setStatus("offline");
      if (event.code === CLOSE_FLOOD) this.backoff = this.options.backoffMaxMs;
      if (event.code === CLOSE_TOO_BIG) {
        // The server refused a frame as too big: the largest unacknowledged one. It goes
        // aside, so the next connection does not send it again and fail the same way.
        const largest = this.state.outbox.reduce(
          (big, e) => (!big || e.text.length > big.text.length ? e : big),
          null,
        );
        if (largest) this.keepAside(largest, event.reason || "refused by the server as too big");
      }
      this.reconnectLater();
    };
  }

  reconnectLater() {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, this.options.backoffMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  reconnectNow() {
    if (this.socket || this.stopped || this.status === "unauthorised") return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.backoff = this.options.backoffMinMs;
    this.connect();
  }

  receive(text) {
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch {
      return;
    }
    if (envelope && envelope.type === "ping") {
      const ping = this.pendingPings.shift();
      if (ping) this.acknowledge(ping.mark);
    } else if (this.options.onEnvelope) {
      this.options.onEnvelope(envelope);
    }
  }

  ping() {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const oldest = this.pendingPings[0];
    if (oldest && Date.now() - oldest.sentAt > this.options.pingTimeoutMs) {
      socket.close(); // no answer for too long: the connection is dead, start another
      return;
    }
    this.pendingPings.push({ mark: this.state.nextSeq - 1, sentAt: Date.now() });
    socket.send('{"type":"ping"}');
  }

  pingSoon() {
    if (this.pingTimer) return;
    this.pingTimer = setTimeout(() => {
      this.pingTimer = null;
      this.ping();
    }, 150);
  }

  every(ms, fn) {
    this.timers.push(setInterval(fn, ms));
  }

  // Life cycle --------------------------------------------------------------------------

  start() {
    this.started = true;
    this.startRecording();
    this.connect();
    this.every(this.options.pingMs, () => this.ping());
    this.onPageHide = () => {
      // Events of the last moments are numbered now and sent by the next page.
      if (this.buffer.length) {
        const batch = { index: this.state.nextEventIndex++, kind: this.kind, events: this.buffer };
        this.buffer = [];
        this.state.unbuilt.push(batch);
      }
      this.save();
    };
    this.onOnline = () => this.reconnectNow();
    addEventListener("pagehide", this.onPageHide);
    addEventListener("online", this.onOnline);
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.stopRecording) this.stopRecording();
    this.flush();
    this.timers.forEach(clearInterval);
    clearTimeout(this.reconnectTimer);
    removeEventListener("pagehide", this.onPageHide);
    removeEventListener("online", this.onOnline);
    if (this.socket) this.socket.close(1000);
  }

  get conversationUuid() {
    return this.state.conversationUuid;
  }

  get customer() {
    return { ...this.state.customer };
  }
}

const api = {
  current: null,
  /** Start recording and chatting; one client per page. */
  start(options) {
    if (api.current) return api.current;
    api.current = new Client(options).start();
    return api.current;
  },
};

// A shop can also embed it with one tag: <script src=".../client.js" data-key="…" data-url="…">.
const tag = document.currentScript;
if (tag && tag.dataset && tag.dataset.key) {
  const run = () => api.start({ key: tag.dataset.key, url: tag.dataset.url || null });
  if (document.readyState === "loading") addEventListener("DOMContentLoaded", run);
  else run();
}

window.ConversationReplayClient = api;
export default api;
