// Shared by the bench's automerge-repo drivers.
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { WebSocket } from "ws"

const WORDS = [
  "visit", "home", "office", "telephone", "discussed", "reviewed", "licence", "order",
  "conditions", "programme", "session", "attended", "missed", "housing", "tenancy", "rent",
  "arrears", "employment", "college", "course", "police", "partner", "former", "contact",
  "children", "school", "health", "GP", "appointment", "alcohol", "drugs", "testing",
  "negative", "positive", "concerns", "none", "reported", "agreed", "plan", "actions",
  "next", "week", "month", "review", "senior", "informed", "risk", "factors", "stable",
  "settled", "anxious", "calm", "cooperative", "brother", "mother", "support", "benefits",
  "letter", "court", "report", "unpaid", "work", "hours", "completed",
]
const MASK = (1n << 64n) - 1n

/** About 200 bytes of synthetic chronology text: the same as the Casebook bench's
 * `entry_text` (tests/src/bench/fixture.rs). */
export function entryText(n) {
  const step = (x) => (x * 6364136223846793005n + 1442695040888963407n) & MASK
  let x = step(BigInt(n))
  let out = `Contact ${n}:`
  while (out.length < 190) {
    x = step(x)
    out += " " + WORDS[Number((x >> 33n) % BigInt(WORDS.length))]
  }
  return out + "."
}

/** A chronology entry like Casebook's. */
export function entry(n, author) {
  return {
    event_date: `2026-${String((n % 12) + 1).padStart(2, "0")}-${String((n % 28) + 1).padStart(2, "0")}`,
    date_approximate: false,
    what_happened: entryText(n),
    source: "Case worker",
    impact: "neutral",
    action_taken: "",
    category: "Supervision contact",
    withheld: false,
    author,
    recorded_at: Date.now(),
  }
}

/** Milliseconds on a clock shared by every process on this machine. */
export function now() {
  return performance.timeOrigin + performance.now()
}

/** A connected client repo (in memory, as a device with no storage). */
export function client(url, storage) {
  return new Repo({
    network: [new WebSocketClientAdapter(url)],
    storage,
    sharePolicy: async () => true,
  })
}

/** Counts the bytes sent on sockets for which `counted(socket)` holds. */
export function countSends(counted) {
  const total = { bytes: 0 }
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (data, ...rest) {
    if (counted(this)) total.bytes += data.byteLength ?? data.length
    return send.call(this, data, ...rest)
  }
  return total
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** `repo.find(url)`, tried again while the server does not have the document yet. */
export async function findRetrying(repo, url) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await repo.find(url)
    } catch (e) {
      if (attempt >= 100) throw e
      await sleep(50)
    }
  }
}
