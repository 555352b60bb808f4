// A client of Vellum's opaque relay for end-to-end encrypted documents
// (/v1/collab-e2ee/{id}, plugins/editor/README.md "End-to-end encrypted
// documents"): a Yjs document whose updates and snapshots are encrypted with
// AES-256-GCM (Node's WebCrypto) under a key the clients share and the
// server never sees. The wire format is written here from the README, in
// lib0 encoding.
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { webcrypto } from 'node:crypto'
import { env } from './common.mjs'

const subtle = webcrypto.subtle
export const wsE2ee = env.VELLUM_URL.replace(/^http/, 'ws') + '/v1/collab-e2ee'

// Client -> server and server -> client message types.
export const C = { SYNC: 0, APPEND: 1, SNAPSHOT: 2, AWARENESS: 3 }
export const S = {
  WELCOME: 0, SNAPSHOT: 1, ENTRY: 2, SYNCED: 3, ACK: 4, SNAPSHOT_ACK: 5, COMPACTED: 6,
  SNAPSHOT_REJECTED: 7, DENIED: 8, PRESENCE: 9, ACCESS: 10
}

export const newKey = () => subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt'])
export const exportKey = async (k) => Buffer.from(await subtle.exportKey('raw', k)).toString('base64')
export const importKey = (b64) =>
  subtle.importKey('raw', Buffer.from(b64, 'base64'), { name: 'AES-GCM' }, true, ['encrypt', 'decrypt'])

// The AAD binds a blob to its document and to its kind (update or snapshot).
const aad = (docId, kind) => new TextEncoder().encode(`vellum.e2ee.collab.v1\0${docId}\0${kind}`)
export async function seal (key, docId, kind, plain) {
  const iv = webcrypto.getRandomValues(new Uint8Array(12))
  const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(docId, kind) }, key, plain))
  const out = new Uint8Array(12 + ct.length)
  out.set(iv)
  out.set(ct, 12)
  return out
}
export async function open (key, docId, kind, blob) {
  const plain = await subtle.decrypt({ name: 'AES-GCM', iv: blob.subarray(0, 12), additionalData: aad(docId, kind) },
    key, blob.subarray(12))
  return new Uint8Array(plain)
}

export function encode (type, numbers, blob) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, type)
  for (const n of numbers) encoding.writeVarUint(e, n)
  if (blob !== undefined) encoding.writeVarUint8Array(e, blob)
  return encoding.toUint8Array(e)
}

export function decode (data) {
  const d = decoding.createDecoder(new Uint8Array(data))
  const type = decoding.readVarUint(d)
  const n = () => decoding.readVarUint(d)
  const b = () => decoding.readVarUint8Array(d)
  const s = () => decoding.readVarString(d)
  switch (type) {
    case S.WELCOME: return { type, version: n(), writable: n() === 1, peer: n(), snapshotSeq: n(), head: n() }
    case S.SNAPSHOT: return { type, covers: n(), blob: b() }
    case S.ENTRY: return { type, seq: n(), blob: b() }
    case S.SYNCED: return { type, through: n(), head: n(), more: n() === 1 }
    case S.ACK: return { type, ref: n(), seq: n() }
    case S.SNAPSHOT_ACK: return { type, ref: n(), covers: n() }
    case S.COMPACTED: return { type, covers: n() }
    case S.SNAPSHOT_REJECTED: return { type, ref: n(), snapshotSeq: n(), head: n(), reason: s() }
    case S.DENIED: return { type, ref: n(), code: n(), reason: s() }
    case S.PRESENCE: return { type, peer: n(), blob: b() }
    case S.ACCESS: return { type, writable: n() === 1 }
    default: throw new Error('unknown server message ' + type)
  }
}

// One Yjs document kept in sync through the relay.
export class E2eeClient {
  constructor (token, docId, key, { doc = new Y.Doc(), after = 0 } = {}) {
    Object.assign(this, { token, docId, key, doc })
    this.messages = [] // every decoded server message, for the tests
    this.closeCode = null
    this.welcome = null
    this.synced = false
    this.through = after // every entry up to here is applied (or covered by a snapshot)
    this.have = new Set() // applied entries above `through`
    this.snapshotSeq = 0
    this.nextRef = 1
    this.pending = new Map() // ref -> what it was (update or snapshot)
    this.presence = new Map() // peer -> decrypted awareness JSON
    this.work = Promise.resolve() // decryption and encryption, in order
    this.busy = 0 // queued work not done yet
    this.doc.on('update', (update, origin) => {
      if (origin !== this) this.queue(() => this.append(update))
    })
    this.ws = new WebSocket(`${wsE2ee}/${docId}?access_token=${encodeURIComponent(token)}`)
    this.ws.binaryType = 'arraybuffer'
    this.ws.on('message', (data) => {
      const m = decode(data)
      this.messages.push(m)
      this.queue(() => this.receive(m))
    })
    this.ws.on('close', (code) => { this.closeCode = code })
    this.ws.on('error', () => {})
  }

  queue (fn) {
    this.busy++
    this.work = this.work.then(fn).finally(() => { this.busy-- })
      .catch((e) => { console.error('FAIL: client work: ' + e.stack); process.exit(1) })
    return this.work
  }

  send (bytes) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes) }

  async append (update) {
    const ref = this.nextRef++
    this.pending.set(ref, 'update')
    this.send(encode(C.APPEND, [ref], await seal(this.key, this.docId, 'u', update)))
  }

  advance () {
    while (this.have.has(this.through + 1)) this.have.delete(++this.through)
  }

  async receive (m) {
    switch (m.type) {
      case S.WELCOME:
        this.welcome = m
        this.snapshotSeq = m.snapshotSeq
        this.send(encode(C.SYNC, [this.through]))
        break
      case S.SNAPSHOT:
        Y.applyUpdate(this.doc, await open(this.key, this.docId, 's', m.blob), this)
        this.snapshotSeq = Math.max(this.snapshotSeq, m.covers)
        if (m.covers > this.through) this.through = m.covers
        for (const s of [...this.have]) if (s <= this.through) this.have.delete(s)
        this.advance()
        break
      case S.ENTRY:
        if (m.seq > this.through && !this.have.has(m.seq)) {
          Y.applyUpdate(this.doc, await open(this.key, this.docId, 'u', m.blob), this)
          this.have.add(m.seq)
          this.advance()
        }
        break
      case S.SYNCED:
        if (m.more) this.send(encode(C.SYNC, [m.through]))
        else this.synced = true
        break
      case S.ACK:
        this.pending.delete(m.ref)
        if (m.seq > this.through) this.have.add(m.seq)
        this.advance()
        break
      case S.SNAPSHOT_ACK:
        this.pending.delete(m.ref)
        this.snapshotSeq = Math.max(this.snapshotSeq, m.covers)
        break
      case S.COMPACTED:
        this.snapshotSeq = Math.max(this.snapshotSeq, m.covers)
        break
      case S.SNAPSHOT_REJECTED:
        this.pending.delete(m.ref)
        this.snapshotSeq = Math.max(this.snapshotSeq, m.snapshotSeq)
        break
      case S.DENIED:
        this.pending.delete(m.ref)
        break
      case S.PRESENCE:
        if (m.blob.length === 0) this.presence.delete(m.peer)
        else this.presence.set(m.peer, JSON.parse(new TextDecoder().decode(await open(this.key, this.docId, 'a', m.blob))))
        break
    }
  }

  // Uploads the whole state as a snapshot covering everything applied so
  // far, on top of the snapshot this client knows. Resolves to the answer.
  compact () {
    return this.queue(async () => {
      const ref = this.nextRef++
      this.pending.set(ref, 'snapshot')
      const blob = await seal(this.key, this.docId, 's', Y.encodeStateAsUpdate(this.doc))
      this.send(encode(C.SNAPSHOT, [ref, this.snapshotSeq, this.through], blob))
      return ref
    })
  }

  setPresence (state) {
    return this.queue(async () => {
      this.send(encode(C.AWARENESS, [], await seal(this.key, this.docId, 'a', new TextEncoder().encode(JSON.stringify(state)))))
    })
  }

  // Everything this client wrote is stored (acknowledged).
  get settled () { return this.busy === 0 && this.pending.size === 0 }
  text () { return this.doc.getText('t').toString() }
  close () { this.ws.close() }
}
