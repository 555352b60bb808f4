// End-to-end encrypted realtime documents through the opaque relay.
// PHASE=write: an E2EE document (a real envelope) edited by Yjs clients
// that encrypt every update with AES-256-GCM under a key the server never
// sees: convergence, a late joiner getting snapshot + tail, compaction
// while another client keeps typing, two compactors racing, a viewer
// refused, presence relayed and cleared, revocation; prints what the next
// phase needs. PHASE=read (after a vellumd restart): a fresh client gets
// exactly that text, and new entries continue the sequence.
// PHASE=limits: e2ee_max_log_entries refuses appends until a snapshot.
import { Y, env, sleep, until, check, api, fail } from './common.mjs'
import { E2eeClient, C, S, encode, decode, newKey, exportKey, importKey, seal, wsE2ee } from './e2ee-client.mjs'
import WebSocket from 'ws'
import { webcrypto, createHash } from 'node:crypto'

const subtle = webcrypto.subtle
const MARKER = 'Zyzzyva-plaintext-marker-4711'
const b64 = (u8) => Buffer.from(u8).toString('base64')
const cat = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p)))

// A version 1 envelope (docs/formats/envelope.md) of `plain` under `cek`,
// for one ECDH-P256 recipient: what a browser client uploads to create an
// end-to-end encrypted document.
async function envelope (cek, plain) {
  const alg = 'ECDH-P256+HKDF-SHA256+A256GCM'
  const ecdh = { name: 'ECDH', namedCurve: 'P-256' }
  const recipient = await subtle.generateKey(ecdh, true, ['deriveBits'])
  const ephemeral = await subtle.generateKey(ecdh, true, ['deriveBits'])
  const rspki = new Uint8Array(await subtle.exportKey('spki', recipient.publicKey))
  const espki = new Uint8Array(await subtle.exportKey('spki', ephemeral.publicKey))
  const kid = createHash('sha256').update(rspki).digest('hex')
  const z = await subtle.deriveBits({ name: 'ECDH', public: recipient.publicKey }, ephemeral.privateKey, 256)
  const ikm = await subtle.importKey('raw', z, 'HKDF', false, ['deriveKey'])
  const info = cat('vellum.envelope.v1\0', alg, '\0', espki, rspki)
  const kek = await subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info }, ikm,
    { name: 'AES-GCM', length: 256 }, false, ['encrypt'])
  const wrapNonce = webcrypto.getRandomValues(new Uint8Array(12))
  const wrapped = await subtle.encrypt({ name: 'AES-GCM', iv: wrapNonce, additionalData: cat('vellum.envelope.v1.wrap\0', kid, '\0', alg) },
    kek, await subtle.exportKey('raw', cek))
  const nonce = webcrypto.getRandomValues(new Uint8Array(12))
  const ct = await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: cat('vellum.envelope.v1.content\0') }, cek, plain)
  return {
    vellum_envelope: 1,
    content: { alg: 'A256GCM', nonce: b64(nonce), ciphertext: b64(new Uint8Array(ct)) },
    recipients: [{ kid, alg, epk: b64(espki), nonce: b64(wrapNonce), wrapped_key: b64(new Uint8Array(wrapped)) }],
    kem: null
  }
}

async function createDoc (key) {
  const res = await api('POST', '/v1/docs', env.ADMIN, {
    type: 'text', title: 'secret', e2ee: true, content: await envelope(key, Y.encodeStateAsUpdate(new Y.Doc()))
  })
  const body = await res.text()
  check(res.status === 201, 'create e2ee document: ' + res.status + ' ' + body)
  return JSON.parse(body).id
}

const grantOn = (doc, user, actions) =>
  api('POST', '/v1/test/collabpdp/grants', env.ADMIN, { user, resource: 'document/' + doc, actions })

// A raw socket that records every server message (decoded) and its close code.
function rawE2ee (token, doc) {
  const ws = new WebSocket(`${wsE2ee}/${doc}?access_token=${encodeURIComponent(token)}`)
  ws.binaryType = 'arraybuffer'
  const r = { ws, messages: [], bytes: [], closeCode: null }
  ws.on('message', (d) => { r.bytes.push(Buffer.from(d)); r.messages.push(decode(d)) })
  ws.on('close', (code) => { r.closeCode = code })
  ws.on('error', () => {})
  return r
}

async function upgradeStatus (url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_, res) => resolve(res.statusCode))
    ws.on('open', () => { ws.close(); resolve(101) })
    ws.on('error', () => {})
  })
}

const ready = (c) => until(() => c.synced, 'sync of ' + c.token.slice(0, 6))
const converged = (clients, what) =>
  until(() => clients.every((c) => c.text() === clients[0].text() && c.settled), what, 30000)

if (env.PHASE === 'write') {
  const key = await newKey()
  const doc = await createDoc(key)
  check((await grantOn(doc, env.BOB_ID, ['read', 'write'])).status === 204, 'grant bob')
  check((await grantOn(doc, env.CAROL_ID, ['read'])).status === 204, 'grant carol')

  // The other protocols refuse it; the E2EE endpoint refuses other documents.
  const base = env.VELLUM_URL.replace(/^http/, 'ws')
  check(await upgradeStatus(`${base}/v1/collab/${doc}?access_token=${env.ADMIN}`) === 409, 'y-websocket refuses e2ee')
  check(await upgradeStatus(`${base}/v1/collab-e2ee/${env.DOC}?access_token=${env.ADMIN}`) === 409, 'e2ee refuses plain')
  check((await api('GET', `/v1/collab/${doc}/state`, env.ADMIN)).status === 409, 'no server-side state')

  // A witness without the key sees everything the server relays.
  const witness = rawE2ee(env.ADMIN, doc)
  await until(() => witness.messages.length > 0, 'witness welcome')
  witness.ws.send(encode(C.SYNC, [0]))

  // 1. Two writers converge on concurrent edits.
  const a = new E2eeClient(env.BOB, doc, key)
  const b = new E2eeClient(env.ADMIN, doc, key)
  await ready(a)
  await ready(b)
  check(a.welcome.writable && a.welcome.version === 1, 'bob may write')
  a.doc.getText('t').insert(0, 'alpha ')
  b.doc.getText('t').insert(0, MARKER + ' ')
  for (let i = 0; i < 20; i++) {
    a.doc.getText('t').insert(a.text().length, 'a' + i)
    b.doc.getText('t').insert(0, 'b' + i)
  }
  await converged([a, b], 'two writers converge')
  check(a.text().includes('alpha') && a.text().includes(MARKER), 'both edits kept')

  // 2. Compaction, then a tail; a late joiner gets snapshot + tail.
  const ref = await a.compact()
  await until(() => a.messages.some((m) => m.type === S.SNAPSHOT_ACK && m.ref === ref), 'snapshot accepted')
  const covered = a.snapshotSeq
  check(covered > 0, 'snapshot covers ' + covered)
  await until(() => b.snapshotSeq === covered, 'others told of the compaction')
  for (let i = 0; i < 5; i++) b.doc.getText('t').insert(0, 'tail' + i + ' ')
  await converged([a, b], 'tail')
  const late = new E2eeClient(env.BOB, doc, key)
  await ready(late)
  await until(() => late.text() === a.text(), 'late joiner has everything')
  const lateSnap = late.messages.find((m) => m.type === S.SNAPSHOT)
  check(lateSnap && lateSnap.covers === covered, 'late joiner got the snapshot')
  const lateEntries = late.messages.filter((m) => m.type === S.ENTRY)
  check(lateEntries.length >= 5 && lateEntries.every((m) => m.seq > covered), 'late joiner got the tail only')

  // 3. One client compacts again and again while another keeps typing.
  const answer = (c, r) => c.messages.find((m) => (m.type === S.SNAPSHOT_ACK || m.type === S.SNAPSHOT_REJECTED) && m.ref === r)
  let typing = true
  const typist = (async () => {
    for (let i = 0; typing || i < 150; i++) {
      b.doc.getText('t').insert(b.text().length, String.fromCharCode(97 + (i % 26)))
      if (i % 9 === 8) b.doc.getText('t').delete(0, 1)
      await sleep(2)
    }
  })()
  for (let round = 0; round < 6; round++) {
    await until(() => a.through > a.snapshotSeq, 'new entries to compact')
    const r = await a.compact()
    await until(() => answer(a, r), 'compaction answer')
    check(answer(a, r).type === S.SNAPSHOT_ACK, 'a compaction while another client types: ' + JSON.stringify(answer(a, r)))
  }
  typing = false
  await typist
  await converged([a, b, late], 'compaction while typing loses nothing')
  const fresh = new E2eeClient(env.CAROL, doc, key)
  await ready(fresh)
  await until(() => fresh.text() === b.text(), 'a fresh client rebuilds the text from snapshot + tail')

  // 4. Two compactors race on the same base: exactly one wins; the loser
  // learns the new base and wins on its next try.
  b.doc.getText('t').insert(0, 'pre-race ')
  await converged([a, b], 'before the race')
  await until(() => a.snapshotSeq === b.snapshotSeq && a.through === b.through && a.through > a.snapshotSeq,
    'same view before the race')
  const [refA, refB] = await Promise.all([a.compact(), b.compact()])
  await until(() => answer(a, refA) && answer(b, refB), 'race answers')
  const results = [answer(a, refA), answer(b, refB)]
  check(results.filter((m) => m.type === S.SNAPSHOT_ACK).length === 1, 'exactly one compactor wins: ' + JSON.stringify(results))
  const loser = results[0].type === S.SNAPSHOT_REJECTED ? a : b
  const rejected = results[0].type === S.SNAPSHOT_REJECTED ? results[0] : results[1]
  check(rejected.reason.includes('older snapshot'), 'rejection reason: ' + rejected.reason)
  b.doc.getText('t').insert(0, 'after-race ')
  await converged([a, b], 'after the race')
  await until(() => loser.through > loser.snapshotSeq, 'the loser has something new')
  const retry = await loser.compact()
  await until(() => answer(loser, retry), 'retry answer')
  check(answer(loser, retry).type === S.SNAPSHOT_ACK, 'the loser rebuilds on the new snapshot and wins')
  await converged([a, b, late, fresh], 'race loses nothing')

  // 5. A viewer reads but cannot append or compact.
  check(!fresh.welcome.writable, 'carol is a viewer')
  const before = a.text()
  fresh.doc.getText('t').insert(0, 'EVIL ')
  await until(() => fresh.messages.some((m) => m.type === S.DENIED && m.code === 1), 'viewer append denied')
  const vref = await fresh.compact()
  await until(() => fresh.messages.some((m) => m.type === S.DENIED && m.ref === vref), 'viewer snapshot denied')
  a.doc.getText('t').insert(0, 'X')
  await until(() => b.text() === 'X' + before, 'writers go on; the viewer edit never arrives')
  check(!b.text().includes('EVIL') && !a.text().includes('EVIL'), 'no viewer text anywhere')
  fresh.close()

  // 6. Presence: relayed (encrypted too), never stored, cleared on leave.
  await a.setPresence({ name: 'bob', cursor: 3 })
  await until(() => [...b.presence.values()].some((p) => p.name === 'bob'), 'presence relayed')
  const peerOfA = a.welcome.peer
  a.close()
  await until(() => !b.presence.has(peerOfA), 'presence cleared on leave')

  // 7. The server relayed only ciphertext: no plaintext in anything the
  // witness (who has no key) received.
  await until(() => witness.messages.some((m) => m.type === S.ENTRY), 'witness saw entries')
  for (const bytes of witness.bytes) check(!bytes.includes(MARKER), 'plaintext in a relayed message')

  // 8. Malformed input closes only that socket with 4400.
  const bad = rawE2ee(env.BOB, doc)
  await until(() => bad.messages.length > 0, 'bad welcome')
  bad.ws.send(Uint8Array.from([9]))
  await until(() => bad.closeCode !== null, 'malformed close')
  check(bad.closeCode === 4400, 'malformed: ' + bad.closeCode)
  const empty = rawE2ee(env.BOB, doc)
  await until(() => empty.messages.length > 0, 'welcome')
  empty.ws.send(encode(C.APPEND, [1], new Uint8Array(0)))
  await until(() => empty.closeCode !== null, 'empty blob close')
  check(empty.closeCode === 4400, 'empty blob: ' + empty.closeCode)

  // 9. Rights change: a downgrade is announced, a revocation closes with 4403.
  check((await grantOn(doc, env.BOB_ID, ['read'])).status === 204, 'downgrade bob')
  await until(() => late.messages.some((m) => m.type === S.ACCESS && !m.writable), 'access message')
  late.doc.getText('t').insert(0, 'NO ')
  await until(() => late.messages.some((m) => m.type === S.DENIED), 'downgraded append denied')
  check((await grantOn(doc, env.BOB_ID, [])).status === 204, 'revoke bob')
  await until(() => late.closeCode !== null, 'revoked socket closes')
  check(late.closeCode === 4403, 'revocation: ' + late.closeCode)

  await converged([b], 'final')
  const last = new E2eeClient(env.ADMIN, doc, key)
  await ready(last)
  await until(() => last.text() === b.text(), 'final state')
  check(!b.text().includes('NO ') && !b.text().includes('EVIL'), 'no refused edit in the final state')
  for (const c of [b, last]) c.close()
  witness.ws.close()
  process.stdout.write(JSON.stringify({ doc, key: await exportKey(key), text: b.text(), head: b.through }))
  process.exit(0)
} else if (env.PHASE === 'read') {
  const { doc, key: k, text, head } = JSON.parse(env.EXPECT)
  const key = await importKey(k)
  const c = new E2eeClient(env.ADMIN, doc, key)
  await ready(c)
  check(c.text() === text, 'text after restart: ' + c.text())
  check(c.welcome.head === head, `head after restart ${c.welcome.head}, expected ${head}`)
  c.doc.getText('t').insert(0, 'more ')
  await until(() => c.settled, 'append after restart')
  const ack = c.messages.find((m) => m.type === S.ACK)
  check(ack.seq === head + 1, `sequence continues: ${ack.seq} after ${head}`)
  c.close()
  console.log('ok')
  process.exit(0)
} else if (env.PHASE === 'limits') {
  // Configured with e2ee_max_log_entries = 5.
  const key = await newKey()
  const doc = await createDoc(key)
  const r = rawE2ee(env.ADMIN, doc)
  await until(() => r.messages.length > 0, 'welcome')
  for (let i = 1; i <= 6; i++) r.ws.send(encode(C.APPEND, [i], await seal(key, doc, 'u', Uint8Array.from([i]))))
  await until(() => r.messages.some((m) => m.ref === 6) && r.messages.filter((m) => m.type === S.ACK).length >= 5,
    'six answered')
  const acks = r.messages.filter((m) => m.type === S.ACK)
  check(acks.length === 5 && acks.map((m) => m.seq).join() === '1,2,3,4,5', 'five stored: ' + JSON.stringify(acks))
  const full = r.messages.find((m) => m.ref === 6)
  check(full.type === S.DENIED && full.code === 2, 'the sixth is refused: the log is full')
  // Bad snapshots: not on the current base, beyond the head, nothing new.
  r.ws.send(encode(C.SNAPSHOT, [10, 3, 5], Uint8Array.from([1])))
  r.ws.send(encode(C.SNAPSHOT, [11, 0, 6], Uint8Array.from([1])))
  r.ws.send(encode(C.SNAPSHOT, [12, 0, 4], await seal(key, doc, 's', Uint8Array.from([0, 0]))))
  r.ws.send(encode(C.SNAPSHOT, [13, 0, 3], Uint8Array.from([1])))
  await until(() => r.messages.some((m) => m.ref === 13), 'snapshot answers')
  const ans = (ref) => r.messages.find((m) => m.ref === ref)
  check(ans(10).type === S.SNAPSHOT_REJECTED, 'wrong base refused')
  check(ans(11).type === S.SNAPSHOT_REJECTED, 'beyond the head refused')
  check(ans(12).type === S.SNAPSHOT_ACK && ans(12).covers === 4, 'a good snapshot is stored')
  check(ans(13).type === S.SNAPSHOT_REJECTED && ans(13).snapshotSeq === 4, 'the old base no longer works')
  r.ws.send(encode(C.APPEND, [20], Uint8Array.from([7])))
  await until(() => r.messages.some((m) => m.ref === 20), 'append after snapshot')
  check(ans(20).type === S.ACK && ans(20).seq === 6, 'room again after the snapshot')
  // A joiner from 0 gets the snapshot (covers 4) and entries 5, 6.
  const j = rawE2ee(env.ADMIN, doc)
  await until(() => j.messages.length > 0, 'welcome')
  j.ws.send(encode(C.SYNC, [0]))
  await until(() => j.messages.some((m) => m.type === S.SYNCED), 'synced')
  const kinds = j.messages.map((m) => m.type === S.ENTRY ? 'e' + m.seq : m.type === S.SNAPSHOT ? 's' + m.covers : m.type).join(',')
  check(kinds === `${S.WELCOME},s4,e5,e6,${S.SYNCED}`, 'snapshot + tail: ' + kinds)
  r.ws.close()
  j.ws.close()
  console.log('ok')
  process.exit(0)
} else {
  fail('PHASE?')
}
