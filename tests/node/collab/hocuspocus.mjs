// Hocuspocus's own provider (@hocuspocus/provider) against vellumd's
// /v1/collab-hocuspocus: several documents on one socket, the token in the
// auth message, a read-only viewer, an unknown document refused alone,
// stateless messages, awareness, SyncStatus acknowledgements, a
// y-websocket client on the same document, and revocation of one document
// of a multiplexed socket.
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import { Y, env, until, check, api, provider as ywsProvider, synced as ywsSynced } from './common.mjs'

const url = env.VELLUM_URL.replace(/^http/, 'ws') + '/v1/collab-hocuspocus'
let sockets = 0
class CountingWebSocket extends WebSocket {
  constructor (...args) {
    super(...args)
    sockets++
  }
}

function socket () {
  return new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: CountingWebSocket, maxAttempts: 1 })
}

function provider (ws, name, token) {
  const events = { authenticated: null, failed: null, stateless: [], closes: [] }
  const p = new HocuspocusProvider({
    websocketProvider: ws,
    name,
    token,
    document: new Y.Doc(),
    onAuthenticated: ({ scope }) => { events.authenticated = scope },
    onAuthenticationFailed: ({ reason }) => { events.failed = reason },
    onStateless: ({ payload }) => events.stateless.push(payload),
    onClose: ({ event }) => events.closes.push(event.reason)
  })
  p.attach()
  p.events = events
  p.text = () => p.document.getText('t').toString()
  return p
}
const hpSynced = (p, what) => until(() => p.isSynced && p.events.authenticated, what)

// A second document, writable by bob as well.
const res = await api('POST', '/v1/docs', env.ADMIN, { type: 'text', title: 'second', content: '' })
check(res.status === 201, 'second document')
const DOC2 = (await res.json()).id
const grant2 = (user, actions) =>
  api('POST', '/v1/test/collabpdp/grants', env.ADMIN, { user, resource: 'document/' + DOC2, actions })
check((await grant2(env.BOB_ID, ['read', 'write'])).status === 204, 'grant bob doc2')

// Two sockets, two documents each.
const sa = socket()
const sb = socket()
const a1 = provider(sa, env.DOC, env.BOB)
const a2 = provider(sa, DOC2, env.BOB)
const b1 = provider(sb, env.DOC, env.ADMIN)
const b2 = provider(sb, DOC2, env.ADMIN)
for (const [p, what] of [[a1, 'a1'], [a2, 'a2'], [b1, 'b1'], [b2, 'b2']]) await hpSynced(p, what)
check(sockets === 2, 'two providers share one socket: ' + sockets + ' sockets')
check(a1.events.authenticated === 'read-write', 'bob writes: ' + a1.events.authenticated)

// Concurrent edits on both documents converge.
for (let i = 0; i < 30; i++) {
  a1.document.getText('t').insert(0, 'a' + i)
  b1.document.getText('t').insert(b1.text().length, 'b' + i)
  a2.document.getText('t').insert(a2.text().length, 'x' + i)
  b2.document.getText('t').insert(0, 'y' + i)
}
await until(() => a1.text() === b1.text() && a1.text().length === 2 * (10 * 2 + 20 * 3), 'doc 1 converges')
await until(() => a2.text() === b2.text() && a2.text().includes('x29') && a2.text().includes('y29'), 'doc 2 converges')
// The server acknowledges every stored update with a sync status.
await until(() => [a1, a2, b1, b2].every((p) => !p.hasUnsyncedChanges), 'all updates acknowledged')

// A y-websocket client on the same document sees the same state and its
// edits reach the Hocuspocus providers.
const y = ywsProvider(env.BOB)
await ywsSynced(y)
await until(() => y.doc.getText('t').toString() === a1.text(), 'y-websocket sees the Hocuspocus edits')
y.doc.getText('t').insert(0, 'from-y ')
await until(() => a1.text().startsWith('from-y ') && b1.text().startsWith('from-y '), 'and the other way round')
y.destroy()

// Awareness between providers, cleared when one leaves.
a1.setAwarenessField('user', { name: 'bob' })
await until(() => [...b1.awareness.getStates().values()].some((s) => s.user?.name === 'bob'), 'awareness relayed')

// Stateless messages reach the document's other providers, not other documents.
a1.sendStateless('ping-1')
await until(() => b1.events.stateless.includes('ping-1'), 'stateless relayed')
check(!b2.events.stateless.includes('ping-1'), 'stateless stays in its document')

// A wrong token fails for its document only; the socket carries on.
const sc = socket()
const bad = provider(sc, env.DOC, 'vls_' + 'x'.repeat(40))
const c2 = provider(sc, DOC2, env.BOB)
await until(() => bad.events.failed !== null, 'bad token refused')
check(bad.events.failed.includes('invalid'), 'reason: ' + bad.events.failed)
await hpSynced(c2, 'the same socket authenticates another document')
await until(() => c2.text() === a2.text(), 'c2 has doc 2')
bad.document.getText('t').insert(0, 'UNAUTH ')

// An unknown document is refused alone.
const unknown = provider(sc, 'f'.repeat(32), env.BOB)
await until(() => unknown.events.failed !== null, 'unknown document refused')
check(unknown.events.failed === 'no such document', 'reason: ' + unknown.events.failed)
c2.document.getText('t').insert(0, 'c2 ')
await until(() => a2.text().startsWith('c2 '), 'the socket still works after a refusal')

// A viewer gets a read-only connection: her edits are answered with a
// negative sync status and reach nobody.
const sv = socket()
const viewer = provider(sv, env.DOC, env.CAROL)
await hpSynced(viewer, 'viewer')
check(viewer.events.authenticated === 'readonly', 'carol is read-only: ' + viewer.events.authenticated)
await until(() => viewer.text() === a1.text(), 'viewer reads')
viewer.document.getText('t').insert(0, 'EVIL ')
await new Promise((resolve) => setTimeout(resolve, 300))
check(viewer.hasUnsyncedChanges, 'the viewer edit is not acknowledged')
a1.document.getText('t').insert(0, 'Z')
await until(() => b1.text().startsWith('Z'), 'writers carry on')
check(!b1.text().includes('EVIL') && !a1.text().includes('EVIL') && !b1.text().includes('UNAUTH'), 'no refused edit reached anyone')
const state = new Uint8Array(await (await api('GET', `/v1/collab/${env.DOC}/state`, env.ADMIN)).arrayBuffer())
const stored = new Y.Doc()
Y.applyUpdate(stored, state)
check(stored.getText('t').toString() === a1.text(), 'stored state has no refused edit')

// Revoking bob's rights on doc 2 closes that document only.
check((await grant2(env.BOB_ID, [])).status === 204, 'revoke bob on doc 2')
await until(() => a2.events.failed !== null, 'doc 2 refused after revocation')
check(a2.events.failed.includes('revoked'), 'reason: ' + a2.events.failed)
a1.document.getText('t').insert(0, 'still ')
await until(() => b1.text().startsWith('still '), 'doc 1 goes on on the same socket')
const frozen = b2.text()
a2.document.getText('t').insert(0, 'LATE ')
b2.document.getText('t').insert(0, 'ok ')
await until(() => b2.text().startsWith('ok '), 'admin still writes doc 2')
check(!b2.text().includes('LATE') && b2.text() === 'ok ' + frozen, 'a revoked document receives nothing from bob')

// Malformed input (a truncated name) closes only that socket, with 4400.
const raw = new WebSocket(url)
await new Promise((resolve) => raw.on('open', resolve))
const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)))
raw.send(Uint8Array.from([0x05, 0x61]))
check(await closed === 4400, 'malformed message closes with 4400')
b1.document.getText('t').insert(0, 'alive ')
await until(() => a1.text().startsWith('alive '), 'others unaffected')

for (const p of [a1, a2, b1, b2, bad, c2, unknown, viewer]) p.destroy()
for (const s of [sa, sb, sc, sv]) s.destroy()
console.log('ok')
process.exit(0)
