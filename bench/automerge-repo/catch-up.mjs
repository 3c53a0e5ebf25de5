// Catch-up against the automerge-repo sync server: device A makes 10 entries in each of 20
// documents offline, then reconnects while device B is connected. Prints one JSON line per
// run: the time from reconnecting until B holds every change, the bytes A sent after
// reconnecting, and the encoded size of the changes.
//
//   node catch-up.mjs WS_URL RUNS DOCUMENTS PER_DOCUMENT
import * as A from "@automerge/automerge"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { Repo } from "@automerge/automerge-repo"
import { client, countSends, entry, findRetrying, now, sleep } from "./common.mjs"

const [url, runs, documents, perDocument] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
  Number(process.argv[5]),
]
let reconnecting = null
const sent = countSends((socket) => reconnecting !== null && socket === reconnecting.socket)

function holdsAll(handles, heads) {
  return handles.every((h, i) => {
    const have = A.getHeads(h.doc())
    return heads[i].every((x) => have.includes(x))
  })
}

for (let run = 0; run < runs; run++) {
  // A, online: 20 chronologies of 50 entries; B opens them too.
  const online = new WebSocketClientAdapter(url)
  const a = new Repo({ network: [online], sharePolicy: async () => true })
  const handles = []
  for (let d = 0; d < documents; d++) {
    const h = a.create({ entries: {} })
    for (let n = 0; n < 50; n++) h.change((doc) => { doc.entries[`seed-${n}`] = entry(n, "a") })
    handles.push(h)
  }
  const b = client(url)
  const onB = await Promise.all(handles.map((h) => findRetrying(b, h.url)))
  while (!holdsAll(onB, handles.map((h) => A.getHeads(h.doc())))) await sleep(5)

  // A goes offline and writes 200 new entries.
  a.networkSubsystem.removeNetworkAdapter(online)
  await sleep(200)
  let encoded = 0
  for (let n = 0; n < perDocument; n++) {
    for (const h of handles) {
      const before = h.doc()
      h.change((doc) => { doc.entries[`offline-${n}`] = entry(n, "a") })
      for (const c of A.getChanges(before, h.doc())) encoded += c.byteLength
    }
  }
  const want = handles.map((h) => A.getHeads(h.doc()))

  // A reconnects; the time until B holds every change.
  sent.bytes = 0
  const started = now()
  reconnecting = new WebSocketClientAdapter(url)
  a.networkSubsystem.addNetworkAdapter(reconnecting)
  while (!holdsAll(onB, want)) await sleep(1)
  const took = now() - started
  console.log(JSON.stringify({ took_ms: took, bytes_sent: sent.bytes, encoded }))
  reconnecting = null
  for (const repo of [a, b]) await repo.shutdown().catch(() => {})
}
process.exit(0)
