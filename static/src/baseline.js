// Benchmark baseline only: rrweb-player given a whole recording at once.
import rrwebPlayer from "rrweb-player";
import "rrweb-player/dist/style.css";

window.BaselinePlayer = rrwebPlayer;
