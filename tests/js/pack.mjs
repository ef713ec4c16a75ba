// Read a JSON array of rrweb events on stdin; write the real @rrweb/packer output for them:
// {"single": [pack(event) for each event], "array": pack(events)}.
import { pack } from "@rrweb/packer";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const events = JSON.parse(Buffer.concat(chunks).toString("utf8"));
if (!Array.isArray(events)) {
  process.stderr.write("expected a JSON array of rrweb events on stdin\n");
  process.exit(2);
}
process.stdout.write(JSON.stringify({ single: events.map((e) => pack(e)), array: pack(events) }));
