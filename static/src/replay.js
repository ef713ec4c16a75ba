// The staff replay page: rrweb's core Replayer with our own controls, fed progressively.
//
// Times are absolute milliseconds on the recording's (customer browser's) clock; transcript
// items carry theirs in data-epoch, already aligned by the server. The recording is loaded in
// chunks of whole batches. The replayer always holds one contiguous run of batches that starts
// at a full snapshot; a seek outside that run rebuilds it from the nearest full snapshot before
// the target, so it never waits for everything in between. The page arrives with the index and
// the first chunk (#replay-start), so the first frame needs no request of its own.
//
// Performance marks (replay:…) time the way from navigation to the first frame; the benchmark
// reads them.
import { Replayer } from "@rrweb/replay";
import "@rrweb/replay/dist/style.css";
import "./replay.css";

performance.mark("replay:script");

const FIRST_CHUNK_EVENTS = 400; // as the server's first chunk (selectors.FIRST_CHUNK_EVENTS)
const LIVE_CHUNK_EVENTS = 20000;
const SLICE_EVENTS = 400; // events handed to the replayer per task, to keep tasks short
const LIVE_RESYNC_MS = 1500;
const LIVE_EVENT_LIMIT = 20000; // an hour-long live view keeps only what follows a snapshot
const LIVE_RETRY_FIRST_MS = 1000;
const LIVE_RETRY_MAX_MS = 30000;
const [POS, FIRST, LAST, COUNT, SNAPSHOTS, SEGMENT] = [0, 1, 2, 3, 4, 5];

const config = JSON.parse(document.getElementById("replay-config").textContent);
const start = JSON.parse(document.getElementById("replay-start")?.textContent || "null");
const $ = (id) => document.getElementById(id);
const stage = $("stage");
const transcript = $("transcript");

const state = {
  batches: [],
  segments: [],
  startMs: null,
  endMs: null,
  replayer: null,
  baseTs: 0, // timestamp of the replayer's first event
  runFrom: 0, // position in `batches` where the replayer's run starts
  runTo: 0, // position of the first batch not loaded into the replayer
  token: 0,
  playing: false,
  waiting: false,
  pendingSeek: null, // a time just beyond what is loaded, to go to once it is
  speed: 1,
  live: false,
  liveBaseline: 0,
  firstFrameAt: null,
  loads: 0,
  preloaded: start?.first || null, // the first chunk, as the page brought it; taken once
};
window.replayState = state; // for the browser tests and the benchmark
window.replaySeek = (ts, play) => seek(ts, play); // play: as now unless told

const sleep = () => new Promise((resolve) => setTimeout(resolve, 0));

function formatMs(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function fetchChunk(fromPos, toPos, max) {
  const preloaded = state.preloaded;
  if (preloaded && toPos !== undefined) {
    state.preloaded = null;
    if (preloaded.from === state.batches[fromPos][POS] && preloaded.to === state.batches[toPos][POS]) {
      return Promise.resolve(preloaded);
    }
  }
  const params = new URLSearchParams({ from: state.batches[fromPos][POS] });
  if (toPos !== undefined) params.set("to", state.batches[toPos][POS]);
  if (max) params.set("max", max);
  state.loads += 1;
  return getJson(`${config.eventsUrl}?${params}`);
}

// Position of the last batch starting at or before `ts`.
function batchAt(ts) {
  let lo = 0;
  let hi = state.batches.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (state.batches[mid][FIRST] <= ts) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

// Position of the last batch holding a full snapshot at or before `pos`.
function keyframeAt(pos) {
  for (let i = pos; i >= 0; i -= 1) if (state.batches[i][SNAPSHOTS] > 0) return i;
  return 0;
}

function posAfter(eventIndex) {
  if (eventIndex === null) return state.batches.length;
  const pos = state.batches.findIndex((b) => b[POS] === eventIndex);
  return pos === -1 ? state.batches.length : pos;
}

// Drop what precedes the first Meta + FullSnapshot: nothing can be drawn before it (and
// without one, nothing at all).
function fromSnapshot(events) {
  const full = events.findIndex((e) => e.type === 2);
  if (full === -1) return [];
  if (full === 0) return events;
  const meta = events[full - 1].type === 4 ? full - 1 : full;
  return events.slice(meta);
}

function loadedUntil() {
  return state.runTo > 0 ? state.batches[state.runTo - 1][LAST] : state.startMs;
}

function position() {
  if (!state.replayer) return state.startMs || 0;
  if (state.live) return state.liveBaseline + state.replayer.timer.timeOffset;
  return state.baseTs + state.replayer.getCurrentTime();
}

function buildReplayer(events) {
  if (state.replayer) state.replayer.destroy();
  stage.replaceChildren();
  const replayer = new Replayer(events, {
    root: stage,
    speed: state.speed,
    skipInactive: $("skip-inactive").checked,
    showWarning: false,
    mouseTail: false,
    UNSAFE_replayCanvas: false,
    liveMode: state.live,
  });
  replayer.on("resize", fitStage);
  replayer.on("finish", () => {
    if (state.runTo < state.batches.length) state.waiting = state.playing;
    else setPlaying(false);
  });
  state.replayer = replayer;
  state.baseTs = events[0].timestamp;
  $("stage-message").hidden = true;
  // Before the frame is painted, not now: measuring the stage here would lay the whole page
  // out before the first frame is built.
  requestAnimationFrame(fitStage);
  return replayer;
}

// rrweb builds a full snapshot into its frame with document.open() and leaves that document
// open; an open frame would keep the whole page loading (no load event) for as long as it is.
// Closed once built, the replayer goes on changing its nodes as before.
function releaseFrame() {
  const doc = state.replayer && state.replayer.iframe && state.replayer.iframe.contentDocument;
  if (doc && doc.readyState === "loading") doc.close();
}

function firstFrameShown() {
  releaseFrame();
  if (state.firstFrameAt !== null) return;
  performance.mark("replay:first-frame");
  state.firstFrameAt = performance.now();
}

function fitStage() {
  const wrapper = stage.querySelector(".replayer-wrapper");
  const iframe = stage.querySelector("iframe");
  if (!wrapper || !iframe) return;
  const width = iframe.offsetWidth || Number(iframe.width) || 1;
  const height = iframe.offsetHeight || Number(iframe.height) || 1;
  const box = $("stage-wrap").getBoundingClientRect();
  const scale = Math.min(box.width / width, box.height / height, 1);
  wrapper.style.transform = `scale(${scale})`;
  wrapper.style.left = `${(box.width - width * scale) / 2}px`;
  wrapper.style.top = `${(box.height - height * scale) / 2}px`;
}

// Feed events to the replayer a slice per task, so the page stays responsive.
async function feed(events, token) {
  for (let i = 0; i < events.length; i += SLICE_EVENTS) {
    if (token !== state.token) return false;
    for (const event of events.slice(i, i + SLICE_EVENTS)) state.replayer.addEvent(event);
    await sleep();
  }
  return token === state.token;
}

// Load the run of batches from the full snapshot before `target`, then keep loading behind.
async function startRun(target, { play = false } = {}) {
  const token = ++state.token;
  let targetPos = batchAt(target);
  let from = keyframeAt(targetPos);
  if (!state.batches[from][SNAPSHOTS]) {
    // No full snapshot at or before the target: start at the first one after it, if any.
    from = state.batches.findIndex((batch, pos) => pos > targetPos && batch[SNAPSHOTS] > 0);
    if (from === -1) return noSnapshot();
    targetPos = from;
    target = state.batches[from][FIRST];
  }
  const chunk = await fetchChunk(from, targetPos, targetPos > from ? LIVE_CHUNK_EVENTS : FIRST_CHUNK_EVENTS);
  if (token !== state.token) return;
  const events = fromSnapshot(chunk.events);
  if (!events.length) return noSnapshot();
  state.runFrom = from;
  state.runTo = chunk.next === null ? targetPos + 1 : posAfter(chunk.next);
  if (state.firstFrameAt === null) performance.mark("replay:chunk");
  buildReplayer(events);
  seekWithin(Math.max(target, state.baseTs), play);
  firstFrameShown();
  loadBehind(token);
}

// Nothing can be drawn before a full snapshot of the page. Following a live conversation, one
// is on its way (a page load's first batch, perhaps still in parts); otherwise there is none.
function noSnapshot() {
  const message = $("stage-message");
  message.textContent = config.live
    ? "Waiting for the customer's page to be recorded…"
    : "This recording holds no full view of the page to start from.";
  message.hidden = false;
}

async function loadBehind(token) {
  while (token === state.token && state.runTo < state.batches.length) {
    const chunk = await fetchChunk(state.runTo);
    if (token !== state.token) return;
    if (!(await feed(chunk.events, token))) return;
    state.runTo = posAfter(chunk.next);
    if (state.pendingSeek !== null && state.pendingSeek <= loadedUntil()) {
      seekWithin(state.pendingSeek, state.waiting);
      state.pendingSeek = null;
      state.waiting = false;
    } else if (state.waiting && state.pendingSeek === null) {
      state.waiting = false;
      seekWithin(position(), true);
    }
    drawLoaded();
  }
  drawLoaded();
}

function seekWithin(ts, play) {
  const offset = Math.max(0, ts - state.baseTs);
  if (play) state.replayer.play(offset);
  else state.replayer.pause(offset);
  setPlaying(play);
}

// Go to `ts` (recording clock); rebuild from the nearest full snapshot when not loaded.
function seek(ts, play = state.playing) {
  if (!state.batches.length || state.startMs === null) return;
  ts = Math.min(Math.max(ts, state.startMs), state.endMs);
  if (state.live) {
    leaveLive(ts, play); // the run is rebuilt at ts: seeking the live replayer would be undone
    draw();
    return;
  }
  const loaded = state.replayer && ts >= state.baseTs && ts <= loadedUntil();
  const sameRun = state.replayer && keyframeAt(batchAt(ts)) <= state.runTo - 1 && ts >= state.baseTs;
  state.pendingSeek = null;
  if (loaded) seekWithin(ts, play);
  else if (sameRun && batchAt(ts) - state.runTo < 3) {
    // Just beyond what is loaded: the loader is about to bring it.
    seekWithin(loadedUntil(), false);
    state.waiting = play;
    state.pendingSeek = ts;
  } else startRun(ts, { play });
  draw();
}

function setPlaying(playing) {
  state.playing = playing;
  const button = $("play");
  button.classList.toggle("playing", playing);
  button.setAttribute("aria-label", playing ? "Pause" : "Play");
}

function togglePlay() {
  if (!state.replayer) return;
  if (state.playing) {
    state.replayer.pause();
    setPlaying(false);
  } else {
    const at = position() >= state.endMs - 50 ? state.startMs : position();
    seek(at, true);
  }
}

// Live -----------------------------------------------------------------------------------

// Follow along: rrweb's live mode schedules by elapsed time from a baseline. Our baseline is
// on the customer's clock and moves to each batch as it arrives, so a skewed customer clock
// neither delays nor bunches what staff see.
function enterLive() {
  if (!state.replayer) return;
  state.token += 1;
  const end = state.batches[state.batches.length - 1][LAST];
  state.replayer.pause(Math.max(0, end - state.baseTs));
  state.replayer.setConfig({ liveMode: true });
  state.liveBaseline = end;
  state.replayer.startLive(end);
  state.live = true;
  setPlaying(true);
  document.body.classList.add("is-live");
}

// Back to an ordinary replay, rebuilt at `at` (the recording's end unless told).
function leaveLive(at = null, play = false) {
  if (at === null) at = state.batches.length ? state.batches[state.batches.length - 1][LAST] : 0;
  state.live = false;
  document.body.classList.remove("is-live");
  state.token += 1;
  startRun(at, { play });
}

// Batches that arrive while the live view is rebuilt around a late one, applied after.
let rebuilding = null;

function liveBatch(batch) {
  if (rebuilding) {
    rebuilding.push(batch);
    return;
  }
  const meta = batch.meta;
  const last = state.batches[state.batches.length - 1];
  if (last && meta[POS] <= last[POS]) {
    lateBatch(batch);
    return;
  }
  state.batches.push(meta);
  if (state.startMs === null) state.startMs = meta[FIRST];
  state.endMs = Math.max(state.endMs || 0, meta[LAST]);
  if (!state.segments.length || state.segments[state.segments.length - 1].segment !== meta[SEGMENT]) {
    state.segments.push({ segment: meta[SEGMENT], href: batch.href, first_ts: meta[FIRST], last_ts: meta[LAST] });
    drawSegments();
  }
  if (!state.replayer) {
    if (!meta[SNAPSHOTS]) return;
    state.live = true;
    buildReplayer(fromSnapshot(batch.events));
    state.runTo = state.batches.length;
    state.live = false;
    enterLive();
    firstFrameShown(); // a recording that began after the page opened
    return;
  }
  if (!state.live) return;
  const timer = state.replayer.timer;
  const now = state.liveBaseline + timer.timeOffset;
  if (Math.abs(now - meta[FIRST]) > LIVE_RESYNC_MS) timer.timeOffset = meta[FIRST] - state.liveBaseline;
  for (const event of batch.events) state.replayer.addEvent(event);
  state.runTo = state.batches.length;
  if (meta[SNAPSHOTS]) Promise.resolve().then(() => Promise.resolve()).then(trimLive);
}

// A batch below the last one the page holds (its parts completed after later batches'): put
// it in its place, and where the replayer has already drawn past it, or has nothing drawn
// yet, build again from the nearest full snapshot so that it is drawn in order.
async function lateBatch(batch) {
  const meta = batch.meta;
  if (state.batches.some((held) => held[POS] === meta[POS])) return; // shown already
  const at = state.batches.findIndex((held) => held[POS] > meta[POS]);
  state.batches.splice(at, 0, meta);
  state.startMs = Math.min(state.startMs ?? meta[FIRST], meta[FIRST]);
  if (!state.live && state.replayer) {
    // Replaying an earlier moment: rebuild there if the late batch is in or before its run.
    if (at < state.runTo) startRun(position(), { play: state.playing });
    return;
  }
  rebuilding = [];
  try {
    state.live = false;
    await startRun(state.endMs); // the first frame, if this brought the first full snapshot
    enterLive();
  } finally {
    const queued = rebuilding;
    rebuilding = null;
    for (const later of queued) liveBatch(later);
  }
  drawSegments();
  drawMarkers();
}

function trimLive() {
  const events = state.replayer.service.state.context.events;
  if (events.length <= LIVE_EVENT_LIMIT) return;
  let full = -1;
  for (let i = events.length - 1; i > 0; i -= 1) if (events[i].type === 2) { full = i; break; }
  const cut = full > 0 && events[full - 1].type === 4 ? full - 1 : full;
  if (cut > 0) events.splice(0, cut);
}

// The live socket: one at a time, opened again after any drop but a refusal or leaving the
// page. On connect the server first sends what followed the last batch this page holds, and
// the transcript, so a page back from a drop shows what was stored meanwhile.
const live = { socket: null, retryMs: LIVE_RETRY_FIRST_MS, unloading: false };

// A closed conversation's page asks for notes and tags alone: others' show up as they write.
function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const last = state.batches[state.batches.length - 1];
  const query = !config.live ? "?notes=1" : last ? `?after=${last[POS]}` : "";
  return `${scheme}//${location.host}${config.livePath}${query}`;
}

function liveStatus(text) {
  if (!config.live) return; // notes alone: nothing on the page says "live"
  const status = $("live-status");
  if (status) {
    status.textContent = text || "";
    status.hidden = !text;
  }
  document.body.classList.toggle("live-paused", Boolean(text));
}

function applyLiveUpdate(update) {
  applyAnnotations(update);
  if (!update.batches) return; // notes or tags alone
  for (const batch of update.batches) liveBatch(batch);
  for (const item of update.items) addItem(item);
  if (update.closed) $("live-badge")?.replaceChildren("Closed");
  addConsoleEntries(update.batches);
  drawMarkers();
  drawSegments();
  drawConsole();
}

function connectLive() {
  const socket = new WebSocket(liveUrl());
  let opened = false;
  live.socket = socket;
  socket.addEventListener("open", () => {
    opened = true;
    liveStatus(null);
  });
  socket.addEventListener("message", (message) => {
    live.retryMs = LIVE_RETRY_FIRST_MS; // caught up: the next drop starts over at a second
    applyLiveUpdate(JSON.parse(message.data));
  });
  socket.addEventListener("close", () => {
    if (live.socket === socket) live.socket = null;
    if (!live.unloading) reconnectLive(opened);
  });
}

// A browser does not say why a handshake failed: a refusal (403) and a server that is down look
// alike. Ask over HTTP whether this session may still watch; an empty chunk is the least to ask.
async function mayWatch() {
  try {
    const response = await fetch(`${config.eventsUrl}?from=-1&to=-1`, { credentials: "same-origin" });
    return ![401, 403, 404].includes(response.status);
  } catch {
    return true; // unreachable: keep trying
  }
}

async function reconnectLive(opened) {
  liveStatus("Live updates paused — reconnecting…");
  if (!opened && !(await mayWatch())) {
    liveStatus("Live updates stopped — reload the page.");
    return;
  }
  // Doubling up to a cap, with jitter so that pages dropped together do not return together.
  const delay = live.retryMs * (0.5 + Math.random() / 2);
  live.retryMs = Math.min(live.retryMs * 2, LIVE_RETRY_MAX_MS);
  setTimeout(() => {
    if (!live.unloading && !live.socket) connectLive();
  }, delay);
}

function followLive() {
  window.addEventListener("pagehide", () => {
    live.unloading = true;
    live.socket?.close(1000);
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    live.unloading = false; // back from the back-forward cache
    if (!live.socket) connectLive();
  });
  connectLive();
}

// Transcript -----------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addItem(item) {
  const key = item.kind === "message" ? "data-message-uuid" : "data-event-id";
  if (transcript.querySelector(`[${key}="${CSS.escape(item.id)}"]`)) return; // shown already
  $("transcript-empty")?.remove();
  const li = el("li", `item ${item.kind}`);
  li.tabIndex = 0;
  li.dataset.epoch = item.epoch ?? "";
  if (item.kind === "message") {
    if (item.customer) li.classList.add("customer");
    li.dataset.messageUuid = item.id;
    const meta = el("div", "meta");
    meta.append(el("span", "author", item.author), timeTag(item.epoch));
    li.append(meta, el("div", "body", item.body));
    if (item.edits.length) {
      const details = el("details", "edits");
      details.append(el("summary", "", `Edited ${item.edits.length} time${item.edits.length > 1 ? "s" : ""}`));
      const list = el("ol");
      for (const edit of item.edits) list.append(el("li", "", edit.body));
      details.append(list);
      li.append(details);
    }
  } else {
    li.dataset.eventId = item.id;
    li.dataset.eventType = item.event_type;
    li.append(el("span", "text", item.text), timeTag(item.epoch));
  }
  const after = [...transcript.children].find((other) => Number(other.dataset.epoch) > Number(item.epoch));
  transcript.insertBefore(li, after || null);
  labelTimes();
}

function timeTag(epoch) {
  const time = el("time", "at");
  time.dataset.epoch = epoch ?? "";
  return time;
}

function labelTimes() {
  for (const time of transcript.querySelectorAll("time.at")) {
    const epoch = Number(time.dataset.epoch);
    if (!time.dataset.epoch) continue;
    const during = state.startMs !== null && epoch >= state.startMs - 60000 && epoch <= state.endMs + 60000;
    if (during) time.textContent = formatMs(Math.max(0, epoch - state.startMs));
    else time.textContent = new Date(epoch + config.clockOffsetMs).toLocaleTimeString();
  }
}

let activeItem = null;
function highlight(ts) {
  let current = null;
  for (const item of transcript.children) {
    if (!item.dataset.epoch) continue;
    if (Number(item.dataset.epoch) <= ts) current = item;
    else break;
  }
  if (current === activeItem) return;
  activeItem?.classList.remove("active");
  current?.classList.add("active");
  activeItem = current;
  if (current) {
    const top = current.offsetTop - transcript.clientHeight / 3;
    transcript.scrollTo({ top, behavior: "smooth" });
  }
}

// Timeline ------------------------------------------------------------------------------

function fraction(ts) {
  const span = state.endMs - state.startMs;
  return span > 0 ? Math.min(1, Math.max(0, (ts - state.startMs) / span)) : 0;
}

function drawMarkers() {
  const markers = $("track-markers");
  markers.replaceChildren();
  if (state.startMs === null) return;
  for (const item of transcript.children) {
    if (!item.dataset.epoch) continue;
    const marker = el("span", `marker ${item.classList.contains("message") ? "message" : "system"}`);
    marker.style.left = `${fraction(Number(item.dataset.epoch)) * 100}%`;
    marker.title = item.querySelector(".body, .text")?.textContent.slice(0, 80) || "";
    markers.append(marker);
  }
  $("total-time").textContent = formatMs(state.endMs - state.startMs);
  labelTimes();
  drawNoteMarkers();
}

function drawSegments() {
  const list = $("segments");
  list.replaceChildren();
  for (const segment of state.segments) {
    const li = el("li");
    const button = el("button", "segment");
    button.type = "button";
    button.dataset.ts = segment.first_ts;
    button.append(el("span", "seg-time", formatMs(segment.first_ts - state.startMs)), el("span", "seg-url", segment.href || "(unknown page)"));
    button.title = segment.href || "";
    button.addEventListener("click", () => seek(segment.first_ts, state.playing));
    li.append(button);
    list.append(li);
  }
  $("segment-count").textContent = String(state.segments.length);
}

function drawLoaded() {
  if (state.startMs === null || !state.batches.length) return;
  const from = fraction(state.batches[state.runFrom][FIRST]);
  const to = fraction(loadedUntil());
  const bar = $("track-loaded");
  bar.style.left = `${from * 100}%`;
  bar.style.width = `${Math.max(0, to - from) * 100}%`;
}

function draw() {
  if (state.startMs !== null && state.replayer) {
    const ts = position();
    const f = fraction(ts);
    $("track-played").style.width = `${f * 100}%`;
    $("track-handle").style.left = `${f * 100}%`;
    $("track").setAttribute("aria-valuenow", String(Math.round(ts - state.startMs)));
    $("current-time").textContent = formatMs(ts - state.startMs);
    if ($("note-at")) $("note-at").textContent = formatMs(ts - state.startMs);
    highlight(ts);
  }
}

// The one frame loop; anything else that needs the screen up to date calls draw().
function render() {
  draw();
  requestAnimationFrame(render);
}

// Console & network ------------------------------------------------------------------------
// What the customer's browser logged as errors and the requests that failed: listed by the
// server, found in new batches while live, marked on the track; an entry seeks to its moment.

const CONSOLE_PLUGIN = "rrweb/console@1";
const NETWORK_PLUGIN = "replay/network@1";
const CONSOLE_LEVELS = new Set(["error", "assert", "warn"]);

function drawConsole() {
  const markers = $("track-errors");
  markers.replaceChildren();
  if (state.startMs === null) return;
  for (const entry of $("console-list").querySelectorAll(".console-entry")) {
    const ts = Number(entry.dataset.ts);
    entry.querySelector(".console-time").textContent = formatMs(ts - state.startMs);
    const level = entry.classList.contains("level-warn") ? "warn" : "error";
    const marker = el("span", `marker ${level}`);
    marker.style.left = `${fraction(ts) * 100}%`;
    marker.title = entry.title;
    markers.append(marker);
  }
}

// An entry as the server lists it (conversations/rrweb.py), from a recorded plugin event.
function consoleEntry(event) {
  const data = event.type === 6 && event.data;
  const payload = data && data.payload;
  if (!payload || typeof payload !== "object") return null;
  if (data.plugin === CONSOLE_PLUGIN && CONSOLE_LEVELS.has(payload.level)) {
    const args = Array.isArray(payload.payload) ? payload.payload.filter((arg) => typeof arg === "string") : [];
    const words = args.map((arg) => {
      try {
        const value = JSON.parse(arg);
        return typeof value === "string" ? value : arg;
      } catch {
        return arg;
      }
    });
    const message = words.join(" ").trim() || "(no message)";
    return { ts: event.timestamp, kind: "console", level: payload.level, badge: payload.level, text: message, title: message };
  }
  if (data.plugin === NETWORK_PLUGIN && !(payload.status > 0 && payload.status < 400)) {
    const request = `${String(payload.method || "GET").toUpperCase()} ${payload.url || ""}`;
    const outcome = payload.status || payload.error || "failed";
    return { ts: event.timestamp, kind: "network", level: "error", badge: payload.status || "failed", text: request, title: `${request} ${outcome}` };
  }
  return null;
}

function addConsoleEntries(batches) {
  const list = $("console-list");
  const totals = $("console-totals").dataset;
  let listed = 0;
  for (const batch of batches) {
    for (const event of batch.events) {
      const entry = event.type === 6 ? consoleEntry(event) : null;
      if (!entry) continue;
      const button = el("button", `console-entry ${entry.kind} level-${entry.level}`);
      button.type = "button";
      button.dataset.ts = entry.ts;
      button.title = entry.title;
      const time = el("time", "console-time");
      time.dataset.ts = entry.ts;
      button.append(time, el("span", "console-level", String(entry.badge)), el("span", "console-message", entry.text));
      const li = el("li");
      li.append(button);
      const after = [...list.querySelectorAll(".console-entry")].find((other) => Number(other.dataset.ts) > entry.ts);
      list.insertBefore(li, after ? after.parentElement : null);
      listed += 1;
      // Counted as the conversation's counters are: warnings are listed, not counted.
      if (entry.kind === "network") totals.network = Number(totals.network) + 1;
      else if (entry.level !== "warn") totals.console = Number(totals.console) + 1;
    }
  }
  if (!listed) return;
  $("console-empty")?.remove();
  const [logged, failed] = [Number(totals.console), Number(totals.network)];
  $("console-count").textContent = String(logged + failed);
  if (logged + failed) {
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    $("console-totals").textContent = ` · ${plural(logged, "console error")}, ${plural(failed, "failed request")}`;
  }
}

function bindConsole() {
  $("console-list").addEventListener("click", (event) => {
    const entry = event.target.closest(".console-entry");
    if (entry) seek(Number(entry.dataset.ts), false); // paused there, to look at the page as it was
  });
}

// Controls --------------------------------------------------------------------------------

function bindControls() {
  $("play").addEventListener("click", togglePlay);
  $("track").addEventListener("click", (event) => {
    const box = event.currentTarget.getBoundingClientRect();
    const f = (event.clientX - box.left) / box.width;
    seek(state.startMs + f * (state.endMs - state.startMs));
  });
  for (const button of document.querySelectorAll("[data-speed]")) {
    button.addEventListener("click", () => {
      state.speed = Number(button.dataset.speed);
      state.replayer?.setConfig({ speed: state.speed });
      for (const other of document.querySelectorAll("[data-speed]")) other.classList.toggle("active", other === button);
    });
  }
  $("skip-inactive").addEventListener("change", (event) => state.replayer?.setConfig({ skipInactive: event.target.checked }));
  $("fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else $("stage-wrap").requestFullscreen?.();
  });
  document.addEventListener("fullscreenchange", () => setTimeout(fitStage, 50));
  window.addEventListener("resize", fitStage);
  transcript.addEventListener("click", (event) => {
    const item = event.target.closest("li.item");
    if (!item || !item.dataset.epoch || event.target.closest("details")) return;
    seek(Number(item.dataset.epoch));
  });
  transcript.addEventListener("keydown", (event) => {
    const item = event.target.closest("li.item");
    if (event.key === "Enter" && item?.dataset.epoch) seek(Number(item.dataset.epoch));
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input:not([type=checkbox]), select, textarea")) return;
    if (event.key === " ") {
      // A focused button, checkbox or summary acts on the space bar itself; arrows still seek.
      if (event.target.closest("button, summary, input")) return;
      event.preventDefault();
      togglePlay();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      seek(position() + (event.key === "ArrowLeft" ? -5000 : 5000));
    }
  });
  $("live-badge")?.addEventListener("click", () => {
    if (!state.live && state.replayer) enterLive();
  });
}

// Notes and tags ----------------------------------------------------------------------------
//
// A note is pinned to a moment as milliseconds from the start of the recording (what the page
// shows as 1:23), so it stays at its moment whatever the customer's clock said.

const notes = { list: config.notes || [], tags: config.tags || [] };

function noteTs(note) {
  return (state.startMs ?? 0) + note.offset_ms;
}

function recordingOffset() {
  return state.startMs === null ? 0 : Math.max(0, Math.round(position() - state.startMs));
}

async function sendJson(url, method, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrfToken },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

function annotationError(text) {
  const box = $("annotation-error");
  box.textContent = text || "";
  box.hidden = !text;
}

function drawNotes() {
  const list = $("note-list");
  list.replaceChildren();
  for (const note of notes.list) {
    const li = el("li", "note");
    li.tabIndex = 0;
    li.dataset.noteId = note.id;
    li.dataset.offset = note.offset_ms;
    const head = el("div", "note-head");
    head.append(el("time", "at", formatMs(note.offset_ms)), el("span", "note-author", note.author || "someone"));
    if (note.can_delete) {
      const remove = el("button", "note-delete", "Delete");
      remove.type = "button";
      remove.setAttribute("aria-label", `Delete the note at ${formatMs(note.offset_ms)}`);
      remove.addEventListener("click", (event) => {
        event.stopPropagation();
        deleteNote(note);
      });
      head.append(remove);
    }
    li.append(head, el("div", "note-text", note.text));
    li.addEventListener("click", () => seek(noteTs(note)));
    li.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === li) seek(noteTs(note));
    });
    list.append(li);
  }
  $("note-count").textContent = String(notes.list.length);
  drawNoteMarkers();
}

function drawNoteMarkers() {
  const layer = $("track-notes");
  layer.replaceChildren();
  if (state.startMs === null) return;
  for (const note of notes.list) {
    const marker = el("button", "note-marker");
    marker.type = "button";
    marker.dataset.noteId = note.id;
    marker.style.left = `${fraction(noteTs(note)) * 100}%`;
    marker.title = `${formatMs(note.offset_ms)} · ${note.text.slice(0, 80)}`;
    marker.setAttribute("aria-label", `Note at ${formatMs(note.offset_ms)}: ${note.text.slice(0, 80)}`);
    marker.addEventListener("click", (event) => {
      event.stopPropagation(); // not a click on the track at the mouse's position
      seek(noteTs(note));
    });
    layer.append(marker);
  }
}

function noteUpsert(note) {
  notes.list = notes.list.filter((other) => other.id !== note.id);
  notes.list.push(note);
  notes.list.sort((a, b) => a.offset_ms - b.offset_ms || a.id - b.id);
}

// Notes and tags from the live socket: all of them on (re)connecting, then each change anyone
// makes, this page's own included (which it already shows: written once).
function applyAnnotations(update) {
  if (!update.notes_all && !update.notes && !update.notes_deleted && !update.tags) return;
  if (update.notes_all) notes.list = [];
  for (const note of [...(update.notes_all || []), ...(update.notes || [])]) noteUpsert(note);
  const gone = new Set(update.notes_deleted || []);
  notes.list = notes.list.filter((note) => !gone.has(note.id));
  drawNotes();
  if (update.tags) {
    notes.tags = update.tags;
    drawTags();
  }
}

async function addNote(text) {
  const note = await sendJson(config.notesUrl, "POST", { offset_ms: recordingOffset(), text });
  noteUpsert(note);
  drawNotes();
  return note;
}

async function deleteNote(note) {
  try {
    await sendJson(`${config.notesUrl}${note.id}/`, "DELETE");
    notes.list = notes.list.filter((other) => other.id !== note.id);
    drawNotes();
    annotationError(null);
  } catch (error) {
    annotationError(`The note was not deleted: ${error.message}`);
  }
}

function startNote() {
  const text = $("note-text");
  if (!text) return;
  if (state.playing && state.replayer) {
    state.replayer.pause();
    setPlaying(false);
  }
  $("notes").open = true;
  text.focus();
}

function drawTags() {
  const list = $("tags");
  list.replaceChildren();
  for (const tag of notes.tags) {
    const li = el("li", "tag");
    const link = el("a", "tag-link", tag);
    link.href = `${config.listUrl}?${new URLSearchParams({ tag })}`;
    link.title = `Conversations tagged ${tag}`;
    li.append(link);
    if (config.canAnnotate) {
      const remove = el("button", "tag-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove the tag ${tag}`);
      remove.addEventListener("click", () => changeTags({ remove: tag }));
      li.append(remove);
    }
    list.append(li);
  }
  if (!notes.tags.length) list.append(el("li", "muted no-tags", "No tags"));
}

// One change at a time, in the order they were asked: each answer is the whole list after it.
let tagChanges = Promise.resolve(true);
function changeTags(change) {
  tagChanges = tagChanges.then(async () => {
    try {
      notes.tags = (await sendJson(config.tagsUrl, "POST", change)).tags;
      drawTags();
      annotationError(null);
      return true;
    } catch (error) {
      annotationError(`Tags not changed: ${error.message}`);
      return false;
    }
  });
  return tagChanges;
}

function bindAnnotations() {
  drawNotes();
  drawTags();
  $("note-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("note-text");
    if (!text.value.trim()) return;
    try {
      await addNote(text.value);
      text.value = "";
      text.blur(); // back to the player: its keys work again
      annotationError(null);
    } catch (error) {
      annotationError(`The note was not saved: ${error.message}`);
    }
  });
  $("note-text")?.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("note-form").requestSubmit();
    } else if (event.key === "Escape") event.target.blur();
  });
  $("tag-input")?.addEventListener("keydown", (event) => {
    if (event.key === "Escape") event.target.blur();
  });
  $("tag-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("tag-input");
    const tag = input.value;
    if (!tag.trim()) return;
    input.value = ""; // ready for the next tag at once; given back if this one is refused
    if (!(await changeTags({ add: tag })) && !input.value) input.value = tag;
  });
}

// Links to a moment -------------------------------------------------------------------------
//
// `?t=83.5` opens the replay 83.5 s into the recording, as the page's clock shows it.

function momentFromUrl() {
  const t = Number.parseFloat(new URLSearchParams(location.search).get("t") ?? "");
  return Number.isFinite(t) && t >= 0 ? t * 1000 : null;
}

function momentUrl() {
  const seconds = Math.round(recordingOffset() / 100) / 10;
  return `${location.origin}${location.pathname}?t=${seconds}`;
}

let copyTimer = null;
async function copyMomentLink() {
  const url = momentUrl();
  const status = $("copy-status");
  const fallback = $("copy-fallback");
  try {
    await navigator.clipboard.writeText(url);
    fallback.hidden = true;
    status.textContent = `Link to ${formatMs(recordingOffset())} copied`;
  } catch {
    // No clipboard (an insecure origin, a refusal): show the link, selected, to copy by hand.
    fallback.value = url;
    fallback.hidden = false;
    fallback.select();
    status.textContent = "Copy this link:";
  }
  status.dataset.url = url;
  $("copy-link").classList.add("done");
  clearTimeout(copyTimer);
  copyTimer = setTimeout(() => {
    status.textContent = "";
    $("copy-link").classList.remove("done");
  }, 4000);
}

// Keyboard shortcuts ------------------------------------------------------------------------
//
// Space and the arrows are handled with the other controls (bindControls); this table lists
// every shortcut for the `?` overlay and handles the rest.

const SHORTCUTS = [
  { keys: ["Space"], does: "Play or pause" },
  { keys: ["←", "→"], does: "Back or forward 5 seconds" },
  { keys: ["n"], does: "Write a note at this moment", key: "n", run: startNote, when: () => config.canAnnotate },
  { keys: ["l"], does: "Copy a link to this moment", key: "l", run: copyMomentLink },
  { keys: ["f"], does: "Full screen", key: "f", run: () => $("fullscreen").click() },
  { keys: ["Enter"], does: "On a message or note: go to its moment" },
  { keys: ["?"], does: "Show these shortcuts", key: "?", run: toggleShortcuts },
  { keys: ["Esc"], does: "Close these shortcuts" },
];

function drawShortcuts() {
  const list = $("shortcut-list");
  list.replaceChildren();
  for (const shortcut of SHORTCUTS) {
    if (shortcut.when && !shortcut.when()) continue;
    const keys = el("dt");
    shortcut.keys.forEach((key, i) => {
      if (i) keys.append(" ");
      keys.append(el("kbd", "", key));
    });
    list.append(keys, el("dd", "", shortcut.does));
  }
}

function toggleShortcuts() {
  const dialog = $("shortcuts");
  if (dialog.open) dialog.close();
  else dialog.showModal();
}

function onShortcutKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const dialog = $("shortcuts");
  if (dialog.open) {
    if (event.key === "?") toggleShortcuts();
    // Nothing behind the overlay reacts while it is open; Esc closes it (the dialog's own).
    if (event.key !== "Escape" && event.key !== "Tab") {
      event.preventDefault();
      event.stopPropagation();
    }
    return;
  }
  if (event.target.closest("input, select, textarea")) return;
  const shortcut = SHORTCUTS.find((s) => s.key === event.key && (!s.when || s.when()));
  if (!shortcut) return;
  event.preventDefault();
  event.stopPropagation();
  shortcut.run();
}

function bindShortcuts() {
  drawShortcuts();
  // Captured, so that while the overlay is open the page's other keys stay still.
  document.addEventListener("keydown", onShortcutKey, true);
  $("shortcuts-open").addEventListener("click", toggleShortcuts);
  $("shortcuts-close").addEventListener("click", () => $("shortcuts").close());
  $("shortcuts").addEventListener("click", (event) => {
    if (event.target === event.currentTarget) event.currentTarget.close(); // the backdrop
  });
  $("copy-link").addEventListener("click", copyMomentLink);
}

async function main() {
  bindControls();
  bindAnnotations();
  bindShortcuts();
  bindConsole();
  requestAnimationFrame(render);
  const index = start?.index || (await getJson(config.indexUrl));
  performance.mark("replay:index");
  state.batches = index.batches;
  state.segments = index.segments;
  state.startMs = index.start_ms;
  state.endMs = index.end_ms;
  const moment = momentFromUrl();
  if (state.batches.length) {
    if (moment !== null) await startRun(Math.min(state.startMs + moment, state.endMs));
    else if (config.live) {
      await startRun(state.endMs);
      enterLive();
    } else await startRun(state.startMs);
  }
  // After the first frame, which needs none of them.
  drawSegments();
  drawMarkers(); // and the transcript's times, on the recording's clock once it has one
  drawConsole();
  if (state.startMs === null) labelTimes();
  followLive(); // an open conversation's batches and transcript; anyone's notes and tags
}

main().catch((error) => {
  $("stage-message").hidden = false;
  $("stage-message").textContent = "The recording could not be loaded.";
  console.error(error);
});
