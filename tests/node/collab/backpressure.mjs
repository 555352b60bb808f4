// A client that stops reading is disconnected once its bounded send queue
// overflows (1008, host); the writer is unaffected, and a client that
// reconnects catches up through sync step 1.
import { env, provider, synced, until, check, raw } from './common.mjs'

const slow = raw(env.BOB)
await until(() => slow.messages.length > 0, 'slow client accepted')
slow.ws._socket.pause() // stop reading: the kernel buffers, then the host's queue, fill up

const writer = provider(env.ADMIN)
await synced(writer)
// Overwrites: many bytes relayed, a small document (deleted values are collected).
const m = writer.doc.getMap('m')
const chunk = 'x'.repeat(16 * 1024)
for (let i = 0; i < 1000; i++) {
  m.set('k', chunk + i)
  if (i % 25 === 24) await new Promise((resolve) => setTimeout(resolve, 5))
}
const fresh = provider(env.BOB)
await synced(fresh)
await until(() => fresh.doc.getMap('m').get('k') === chunk + 999, 'a new client has everything')
check(writer.wsconnected, 'the writer stays connected')
slow.ws._socket.resume()
await until(() => slow.closeCode !== null, 'slow client closed', 30000)
check(slow.closeCode === 1008, 'close code ' + slow.closeCode + ' ' + slow.closeReason)
writer.destroy()
fresh.destroy()
console.log('ok')
process.exit(0)
