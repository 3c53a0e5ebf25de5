// Live load against the automerge-repo sync server: devices FIRST .. FIRST+COUNT-1 of
// DEVICES, each a client repo holding PER_DEVICE of the documents, writing at an even share
// of RATE changes/s from START_AT (ms, shared clock) for SECONDS, then draining for up to
// 20 s. Writes a JSON file: every arrival's latency (ms) and time (s from start), the changes
// made, and the deliveries expected. Prints "ready" once its devices hold their documents,
// and starts at the time (ms, shared clock) then given on its standard input.
//
//   node live.mjs WS_URL DOCS_JSON DEVICES PER_DEVICE RATE SECONDS FIRST COUNT OUT
import { readFileSync, writeFileSync } from "node:fs"
import { client, entry, findRetrying, now, sleep } from "./common.mjs"

const args = process.argv.slice(2)
const [url, docsFile] = args
const [devices, perDevice, rate, seconds, first, count] = args.slice(2, 8).map(Number)
const out = args[8]
const docs = JSON.parse(readFileSync(docsFile, "utf8"))
const documentsOf = (n) => Array.from({ length: perDevice }, (_, j) => (n * perDevice + j) % docs.length)
const holders = docs.map(() => 0)
for (let n = 0; n < devices; n++) for (const d of documentsOf(n)) holders[d] += 1

const arrivals = []
let startAt = Number.POSITIVE_INFINITY
let made = 0
let expected = 0
let errors = 0
process.on("uncaughtException", () => { errors += 1 })

const ready = []
const deviceState = []
for (let n = first; n < first + count; n++) {
  const repo = client(url)
  const mine = documentsOf(n)
  ready.push(
    Promise.all(mine.map((d) => findRetrying(repo, docs[d]))).then((handles) => {
      for (const h of handles) {
        h.on("change", ({ patches }) => {
          const t = now()
          for (const p of patches) {
            if (p.action === "put" && p.path.length === 2 && p.path[0] === "entries") {
              const e = h.doc().entries[p.path[1]]
              if (e && e.author !== `d${n}` && typeof e.sent === "number") {
                arrivals.push([Math.round((t - e.sent) * 100) / 100, Math.round((t - startAt) / 10) / 100])
              }
            }
          }
        })
      }
      deviceState.push({ n, handles, mine })
    }),
  )
}
await Promise.all(ready)
console.log("ready")
startAt = await new Promise((resolve) => {
  let input = ""
  process.stdin.on("data", (chunk) => {
    input += chunk
    if (input.includes("\n")) resolve(Number(input.trim()))
  })
})

// Writes: device n writes at even spacing within the run, as the Casebook bench does.
const period = (devices / rate) * 1000
for (const { n, handles } of deviceState) {
  let k = 0
  const write = () => {
    const at = startAt + period * (n / devices) + k * period
    if (at >= startAt + seconds * 1000) return
    setTimeout(() => {
      const h = handles[k % handles.length]
      const e = entry(k, `d${n}`)
      e.sent = now()
      h.change((doc) => { doc.entries[`d${n}-${k}`] = e })
      made += 1
      expected += holders[docs.indexOf(h.url)] - 1
      k += 1
      write()
    }, Math.max(0, at - now()))
  }
  write()
}
await sleep(Math.max(0, startAt + seconds * 1000 - now()) + 20000)
writeFileSync(out, JSON.stringify({ arrivals, made, expected, errors }))
process.exit(0)
