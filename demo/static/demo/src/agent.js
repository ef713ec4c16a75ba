// The demo's agent console: the chat as it is stored, live over the staff socket, and a box
// to answer in. Answers are posted to the server, which stores them as `message` frames.
import "./agent.css";

const config = JSON.parse(document.getElementById("agent-config").textContent);
const $ = (id) => document.getElementById(id);
const log = $("agent-log");
const typing = $("agent-typing");
const body = $("agent-body");
const form = $("agent-reply");
const note = $("agent-reply-note");

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

for (const time of log.querySelectorAll("time[data-ms]")) time.textContent = clock(Number(time.dataset.ms));

function addMessage(item) {
  if (log.querySelector(`[data-message-uuid="${CSS.escape(item.id)}"]`)) return;
  $("agent-empty")?.remove();
  const li = document.createElement("li");
  li.className = `agent-line ${item.customer ? "customer" : "staff"}`;
  li.dataset.messageUuid = item.id;
  const meta = document.createElement("div");
  meta.className = "agent-meta";
  const who = document.createElement("strong");
  who.textContent = item.author;
  const time = document.createElement("time");
  time.textContent = clock(item.server_ms);
  meta.append(who, " ", time);
  const bubble = document.createElement("div");
  bubble.className = "agent-bubble";
  bubble.textContent = item.body;
  li.append(meta, bubble);
  log.append(li);
  log.scrollTop = log.scrollHeight;
  if (item.customer) typing.hidden = true;
}

let typingTimer = null;
function showTyping(text) {
  typing.textContent = text;
  typing.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => (typing.hidden = true), 6000);
}

function addPage(href) {
  const pages = $("agent-pages");
  const last = pages.lastElementChild;
  if (!last || last.textContent !== href) {
    const li = document.createElement("li");
    li.textContent = href;
    pages.append(li);
  }
  $("agent-now").textContent = href;
}

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${config.livePath}`);
  socket.onopen = () => (delay = 1000);
  socket.onmessage = (event) => {
    const update = JSON.parse(event.data);
    for (const item of update.items || []) {
      if (item.kind === "message") addMessage(item);
      else if (item.event_type === "typing") showTyping(item.text.replace(/: .*$/, "…"));
    }
    for (const batch of update.batches || []) if (batch.href) addPage(batch.href);
  };
  socket.onclose = () => setTimeout(() => connect(Math.min(delay * 2, 15000)), delay);
}
connect();
log.scrollTop = log.scrollHeight;

body.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = body.value.trim();
  if (!text) return;
  $("agent-send").disabled = true;
  try {
    const response = await fetch(config.replyUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    body.value = "";
    note.textContent = "Sent.";
    const message = answer.message;
    addMessage({ id: message.conversation_message_uuid, author: message.author_conversation_participant_name, body: message.body, server_ms: message.message_epoch, customer: false });
  } catch (error) {
    note.textContent = `Not sent: ${error.message}`;
  } finally {
    $("agent-send").disabled = false;
    body.focus();
  }
});
