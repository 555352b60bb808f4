// A viewer (read grant only) syncs the document, but its edits are refused
// with the auth "permission denied" message and never reach anyone.
import { Y, env, provider, synced, until, check, raw, opened, syncUpdate } from './common.mjs'
import * as decoding from 'lib0/decoding'

const writer = provider(env.BOB)
await synced(writer)
writer.doc.getText('t').insert(0, 'from bob')
const viewer = provider(env.CAROL)
await synced(viewer)
await until(() => viewer.doc.getText('t').toString() === 'from bob', 'viewer reads')

// The viewer's provider sends its edit; a raw viewer socket checks the answer.
viewer.doc.getText('t').insert(0, 'EVIL ')
const r = raw(env.CAROL)
await opened(r)
const evil = new Y.Doc()
evil.clientID = 4242
evil.getText('t').insert(0, 'EVIL2 ')
r.ws.send(syncUpdate(Y.encodeStateAsUpdate(evil)))
const denied = () => r.messages.find((m) => m[0] === 2)
await until(denied, 'permission denied message')
const d = decoding.createDecoder(denied())
check(decoding.readVarUint(d) === 2 && decoding.readVarUint(d) === 0, 'auth / permission denied')
check(decoding.readVarString(d).length > 0, 'a reason')
check(r.closeCode === null, 'the viewer stays connected')

// Ordering proves absence: the writer's next edit is relayed after the
// refused ones were handled, and a fresh client sees no viewer text.
writer.doc.getText('t').insert(0, 'X')
const fresh = provider(env.ADMIN)
await synced(fresh)
await until(() => fresh.doc.getText('t').toString() === 'Xfrom bob', 'fresh state')
check(!writer.doc.getText('t').toString().includes('EVIL'), 'writer never got viewer edits')
const state = new Uint8Array(await (await fetch(env.VELLUM_URL + `/v1/collab/${env.DOC}/state`,
  { headers: { Authorization: 'Bearer ' + env.ADMIN } })).arrayBuffer())
const stored = new Y.Doc()
Y.applyUpdate(stored, state)
check(stored.getText('t').toString() === 'Xfrom bob', 'stored state has no viewer edits: ' + stored.getText('t').toString())
for (const p of [writer, viewer, fresh]) p.destroy()
r.ws.close()
console.log('ok')
process.exit(0)
