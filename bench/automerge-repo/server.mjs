// The automerge-repo sync server the bench compares Casebook with: a Repo with the
// WebSocket server adapter and NodeFS storage that announces no document to a peer and
// syncs each with the peers that ask for it, as automerge-repo's own sync server
// (automerge-repo-sync-server, `sharePolicy: async () => false`) does. Prints
// "listening PORT" once ready.
//
//   node server.mjs STORAGE_DIR
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const dir = process.argv[2]
const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" })
await new Promise((resolve) => wss.on("listening", resolve))
new Repo({
  network: [new WebSocketServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: "sync-server",
  sharePolicy: async () => false,
})
console.log(`listening ${wss.address().port}`)
