// Creates the live-load documents on the automerge-repo sync server (chronologies of ten
// entries) and prints their URLs as a JSON array once the server holds them.
//
//   node setup.mjs WS_URL DOCUMENTS
import * as A from "@automerge/automerge"
import { client, entry, findRetrying, sleep } from "./common.mjs"

const [url, documents] = [process.argv[2], Number(process.argv[3])]
const repo = client(url)
const handles = []
for (let d = 0; d < documents; d++) {
  const h = repo.create({ entries: {} })
  for (let n = 0; n < 10; n++) h.change((doc) => { doc.entries[`seed-${n}`] = entry(n, "setup") })
  handles.push(h)
}
// A second client finding every document proves the server has them.
const check = client(url)
const found = await Promise.all(handles.map((h) => findRetrying(check, h.url)))
for (let i = 0; i < found.length; i++) {
  while (A.getHeads(found[i].doc()).length === 0 || Object.keys(found[i].doc().entries).length < 10) await sleep(5)
}
console.log(JSON.stringify(handles.map((h) => h.url)))
await repo.shutdown()
await check.shutdown()
process.exit(0)
