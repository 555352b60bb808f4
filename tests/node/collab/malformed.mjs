// Malformed binary messages close only the connection that sent them (4400);
// other clients keep editing and the server stays up.
import { env, provider, synced, until, check, raw, opened, closed } from './common.mjs'

const a = provider(env.BOB)
const b = provider(env.ADMIN)
await synced(a)
await synced(b)
const bad = {
  'truncated varint': [0x80],
  'truncated sync type': [0x00, 0xff],
  'huge length': [0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3],
  'varint beyond 2^53': [0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  'unknown type': [9, 0],
  'unknown sync type': [0, 5, 0],
  'garbage update': [0, 2, 4, 1, 1, 5, 0],
  'bad state vector': [0, 0, 3, 5, 1],
  'trailing bytes': [3, 3],
  'bad awareness': [1, 3, 1, 1, 1]
}
for (const [what, bytes] of Object.entries(bad)) {
  const r = raw(env.BOB)
  await opened(r)
  r.ws.send(Uint8Array.from(bytes))
  await closed(r)
  check(r.closeCode === 4400, `${what}: close code ${r.closeCode}`)
  check(r.closeReason.startsWith('malformed message'), `${what}: reason ${r.closeReason}`)
}
check(a.wsconnected && b.wsconnected, 'others stay connected')
a.doc.getText('t').insert(0, 'still works')
await until(() => b.doc.getText('t').toString() === 'still works', 'edits still relayed')
a.destroy()
b.destroy()
console.log('ok')
process.exit(0)
