// Shared helpers for the realtime tests: real y-websocket providers and raw
// WebSocket clients against the vellumd whose coordinates the C++ harness
// passes in the environment (TLS trusted through NODE_EXTRA_CA_CERTS).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

export const env = process.env
export const wsBase = env.VELLUM_URL.replace(/^http/, 'ws') + '/v1/collab'
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function fail (msg) {
  console.error('FAIL: ' + msg)
  process.exit(1)
}
export function check (cond, msg) {
  if (!cond) fail(msg)
}

export function provider (token, doc = new Y.Doc(), docId = env.DOC) {
  return new WebsocketProvider(wsBase, docId, doc, {
    WebSocketPolyfill: WebSocket,
    params: { access_token: token },
    disableBc: true
  })
}

export async function until (fn, what, ms = 15000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await sleep(20)
  }
  fail('timed out waiting for ' + what)
}

export const synced = (p) => until(() => p.synced, 'sync')

// A raw socket: collects binary messages and the close code.
export function raw (token, docId = env.DOC) {
  const ws = new WebSocket(`${wsBase}/${docId}?access_token=${encodeURIComponent(token)}`)
  ws.binaryType = 'arraybuffer'
  const state = { ws, messages: [], closeCode: null, closeReason: '', opened: false }
  ws.on('open', () => { state.opened = true })
  ws.on('message', (data) => state.messages.push(new Uint8Array(data)))
  ws.on('close', (code, reason) => { state.closeCode = code; state.closeReason = reason.toString() })
  ws.on('error', () => {})
  return state
}
export const opened = (r) => until(() => r.opened || r.closeCode !== null, 'open')
export const closed = (r) => until(() => r.closeCode !== null, 'close')

export async function api (method, path, token, body) {
  const res = await fetch(env.VELLUM_URL + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return res
}
export const grant = (user, actions) =>
  api('POST', '/v1/test/collabpdp/grants', env.ADMIN, { user, resource: 'document/' + env.DOC, actions })

// y-websocket's framing, written by hand so tests can also send bad bytes.
export function varUint (n) {
  const out = []
  while (n > 0x7f) { out.push(0x80 | (n & 0x7f)); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
export const syncUpdate = (u) => Uint8Array.from([0, 2, ...varUint(u.length), ...u])
export { Y }
