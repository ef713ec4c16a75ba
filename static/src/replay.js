// Entry for the staff replay page: exposes rrweb-player to the page's inline setup code.
import rrwebPlayer from "rrweb-player";
import "rrweb-player/dist/style.css";

window.ReplayPlayer = rrwebPlayer;
