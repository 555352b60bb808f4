// Limits on /v1/collab-hocuspocus (configured max_unauthenticated_sockets =
// 2, max_documents_per_socket = 1): sockets that have not authenticated
// share one bound (4430), and one socket authenticates a bounded number of
// documents (the next is refused alone).
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import { Y, env, until, check, api } from './common.mjs'

const url = env.VELLUM_URL.replace(/^http/, 'ws') + '/v1/collab-hocuspocus'
function rawSocket () {
  const ws = new WebSocket(url)
  const r = { ws, opened: false, closeCode: null, closeReason: '' }
  ws.on('open', () => { r.opened = true })
  ws.on('close', (code, reason) => { r.closeCode = code; r.closeReason = reason.toString() })
  ws.on('error', () => {})
  return r
}

const idle = [rawSocket(), rawSocket()]
await until(() => idle.every((r) => r.opened), 'two anonymous sockets')
const third = rawSocket()
await until(() => third.closeCode !== null, 'the third anonymous socket is closed')
check(third.closeCode === 4430, 'close code ' + third.closeCode + ' ' + third.closeReason)

// Once one of them is gone, a provider's socket gets in and authenticates;
// then it no longer counts as anonymous.
idle[0].ws.close()
await until(() => idle[0].closeCode !== null, 'closed')
const res = await api('POST', '/v1/docs', env.ADMIN, { type: 'text', title: 'second', content: '' })
const DOC2 = (await res.json()).id
const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket })
const events = {}
const p1 = new HocuspocusProvider({ websocketProvider: socket, name: env.DOC, token: env.ADMIN, document: new Y.Doc() })
const p2 = new HocuspocusProvider({
  websocketProvider: socket, name: DOC2, token: env.ADMIN, document: new Y.Doc(),
  onAuthenticationFailed: ({ reason }) => { events.failed = reason }
})
let retries = 0
for (;;) {
  p1.attach()
  await until(() => p1.isSynced || socket.status === 'disconnected', 'provider answer')
  if (p1.isSynced) break
  check(++retries < 20, 'the provider socket never got in')
}
p2.attach()
await until(() => events.failed, 'second document refused')
check(events.failed === 'too many documents on this connection', 'reason: ' + events.failed)
const again = rawSocket()
await until(() => again.opened, 'an authenticated socket no longer counts as anonymous')
await new Promise((resolve) => setTimeout(resolve, 200))
check(again.closeCode === null, 'still open: ' + again.closeCode)
p1.document.getText('t').insert(0, 'works')
await until(() => !p1.hasUnsyncedChanges, 'the first document works')
for (const r of [idle[1], again]) r.ws.close()
p1.destroy()
p2.destroy()
socket.destroy()
console.log('ok')
process.exit(0)
