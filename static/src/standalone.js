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
  window.replayPlayer = player;
  document.documentElement.dataset.replay = "ready";
}

start();
