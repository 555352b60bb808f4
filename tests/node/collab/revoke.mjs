// Rights change while the socket is open: a downgrade to read makes the
// connection read-only; a revocation closes it with 4403.
import { Y, env, provider, synced, until, check, raw, opened, closed, grant, syncUpdate } from './common.mjs'

const bob = provider(env.BOB)
await synced(bob)
const r = raw(env.BOB)
await opened(r)
const u1 = new Y.Doc()
u1.clientID = 777
u1.getText('t').insert(0, 'ok ')
r.ws.send(syncUpdate(Y.encodeStateAsUpdate(u1)))
await until(() => bob.doc.getText('t').toString() === 'ok ', 'writer edit relayed')

check((await grant(env.BOB_ID, ['read'])).status === 204, 'downgrade')
const before = r.messages.length
u1.getText('t').insert(0, 'no ')
r.ws.send(syncUpdate(Y.encodeStateAsUpdate(u1)))
await until(() => r.messages.slice(before).some((m) => m[0] === 2), 'permission denied after downgrade')

check((await grant(env.BOB_ID, [])).status === 204, 'revoke')
await closed(r)
check(r.closeCode === 4403, 'close code ' + r.closeCode)
await until(() => !bob.wsconnected, 'provider disconnected')
bob.destroy()
const again = raw(env.BOB)
await closed(again)
check(!again.opened, 'no reconnect after revocation')
const admin = provider(env.ADMIN)
await synced(admin)
check(admin.doc.getText('t').toString() === 'ok ', 'only the allowed edit is stored')
admin.destroy()
console.log('ok')
process.exit(0)
