// The demo shop's chat box, on top of the reference client the page embeds as a plain script.
// Agent answers are stored by the server; the chat box asks for the conversation's messages
// every couple of seconds.
import "./shop.css";

const POLL_MS = 2000;
const OPEN_KEY = "demo-chat-open";

const config = JSON.parse(document.getElementById("demo-client-config").textContent);
const $ = (id) => document.getElementById(id);
const chat = $("chat");
const panel = $("chat-panel");
const log = $("chat-log");
const input = $("chat-input");
const statusLine = $("chat-status");

const STATUS_TEXT = {
  connecting: "Connecting…",
  online: "Online · we answer within minutes",
  offline: "Reconnecting… your messages are kept",
  unauthorised: "Chat is unavailable right now",
};

const shown = new Map(); // message uuid -> <li>
const sent = new Map(); // uuid -> message this tab sent, until the server returns it

const client = window.ConversationReplayClient.start({
  key: config.key,
  url: config.url || null,
  conversationUuid: config.conversationUuid,
  merchantId: config.merchantId,
  onChange: () => render(),
});

function line(message, pending, keptAside = false) {
  let li = shown.get(message.id);
  if (!li) {
    li = document.createElement("li");
    li.dataset.messageUuid = message.id;
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = message.body;
    const meta = document.createElement("div");
    meta.className = "chat-meta";
    li.append(bubble, meta);
    li.dataset.epoch = String(message.epoch || Date.now());
    log.append(li);
    shown.set(message.id, li);
    log.scrollTop = log.scrollHeight;
  }
  // Touch the DOM only on a change: every mutation is recorded, and a recorded batch changes
  // this line's state, which must not record another batch in turn.
  setText(li, "className", `chat-line ${message.customer ? "customer" : "agent"}${pending ? " pending" : ""}`);
  const time = message.epoch
    ? new Date(message.epoch).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : "";
  setText(
    li.querySelector(".chat-meta"),
    "textContent",
    message.customer
      ? `${time}${keptAside ? " · not sent: too large" : pending ? " · sending…" : " · delivered"}`
      : `${message.author}${time ? ` · ${time}` : ""}`,
  );
}

function setText(element, property, value) {
  if (element[property] !== value) element[property] = value;
}

function render() {
  setText(statusLine, "textContent", STATUS_TEXT[client.status] || client.status);
  if (chat.dataset.status !== client.status) chat.dataset.status = client.status;
  const waiting = client.pendingMessages();
  const aside = new Set(client.keptAside().map((kept) => kept.message).filter(Boolean));
  for (const message of sent.values()) line(message, waiting.has(message.id), aside.has(message.id));
}

function setOpen(open) {
  chat.dataset.open = String(open);
  panel.hidden = !open;
  $("chat-launcher").hidden = open;
  sessionStorage.setItem(OPEN_KEY, open ? "1" : "");
  if (open) {
    input.focus();
    log.scrollTop = log.scrollHeight;
  }
}

async function poll() {
  const url = config.messagesUrl.replace("UUID", encodeURIComponent(client.conversationUuid));
  try {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const { messages } = await response.json();
    let news = false;
    for (const message of messages) {
      if (!shown.has(message.id) && !message.customer) news = true;
      sent.delete(message.id);
      line(message, false);
    }
    // Keep the log in time order: stored messages may be older than ones still being sent.
    const lines = [...log.querySelectorAll("li[data-epoch]")];
    lines.sort((a, b) => Number(a.dataset.epoch) - Number(b.dataset.epoch));
    for (const li of lines) log.append(li);
    if (news && chat.dataset.open !== "true") chat.classList.add("unread");
  } catch {
    // Offline for a moment: the next poll catches up.
  }
}

$("chat-launcher").addEventListener("click", () => {
  chat.classList.remove("unread");
  setOpen(true);
});
$("chat-close").addEventListener("click", () => setOpen(false));
input.addEventListener("input", () => {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  if (input.value.trim()) client.typing(input.value);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("chat-form").requestSubmit();
  }
});
$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = input.value.trim();
  if (!body) return;
  const message = client.sendMessage(body);
  const shownMessage = {
    id: message.conversation_message_uuid,
    body,
    epoch: message.message_epoch,
    author: message.author_conversation_participant_name,
    customer: true,
  };
  sent.set(shownMessage.id, shownMessage);
  input.value = "";
  input.style.height = "auto";
  render();
});

// Messages sent on an earlier page and not yet acknowledged are still in the client's outbox.
for (const entry of client.state.outbox) {
  if (!entry.message) continue;
  const { message } = JSON.parse(entry.text);
  sent.set(entry.message, {
    id: entry.message,
    body: message.body,
    epoch: message.message_epoch,
    author: message.author_conversation_participant_name,
    customer: true,
  });
}
setOpen(sessionStorage.getItem(OPEN_KEY) === "1");
render();
poll();
setInterval(() => {
  if (!document.hidden) poll();
}, POLL_MS);
