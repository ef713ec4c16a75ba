// Entry for the standalone replay file: everything it needs is inlined, and it runs from disk.
// The recording and transcript come from a non-executable JSON block, never from script text.
import rrwebPlayer from "rrweb-player";
import "rrweb-player/dist/style.css";

function start() {
  const data = JSON.parse(document.getElementById("replay-data").textContent);
  const target = document.getElementById("player");
  const status = document.getElementById("player-status");
  if (!data.events.length) {
    status.textContent = "This conversation has no recording.";
    document.documentElement.dataset.replay = "empty";
    return;
  }
  const width = Math.max(320, Math.min(target.clientWidth || 960, 1024));
  // UNSAFE_replayCanvas stays off: the replayer's iframe keeps its sandbox without scripts.
  const player = new rrwebPlayer({
    target,
    props: {
      events: data.events,
      width,
      height: Math.round(width * 0.6),
      autoPlay: true,
      skipInactive: true,
      showController: true,
    },
  });
  status.textContent = "";
  for (const item of document.querySelectorAll("[data-offset]")) {
    item.addEventListener("click", () => player.goto(Number(item.dataset.offset), true));
  }
  markNotes(player, target.querySelector(".rr-progress"));
  window.replayPlayer = player;
  document.documentElement.dataset.replay = "ready";
}

// A pin on the player's progress bar for each note the page lists (the list is the one
// source); its text is set as text, never parsed as markup.
function markNotes(player, bar) {
  const total = player.getMetaData().totalTime;
  if (!bar || !(total > 0)) return;
  for (const item of document.querySelectorAll("ol.notes > li[data-offset]")) {
    const offset = Number(item.dataset.offset);
    const at = item.querySelector("time").textContent;
    const author = item.querySelector(".author").textContent;
    const label = `${at} · ${author}: ${item.querySelector(".body").textContent.slice(0, 80)}`;
    const marker = document.createElement("button");
    marker.type = "button";
    marker.className = "note-marker";
    marker.style.left = `${Math.min(1, offset / total) * 100}%`;
    marker.title = label;
    marker.setAttribute("aria-label", `Note at ${label}`);
    marker.addEventListener("click", (event) => {
      event.stopPropagation(); // the bar would seek to the pixel clicked, not the note
      player.goto(offset, true);
    });
    bar.append(marker);
  }
}

start();
