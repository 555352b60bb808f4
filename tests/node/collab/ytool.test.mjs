// The C++ update code (collab_ytool) against yjs itself: random concurrent
// histories over every content type; merged updates (in any order, with
// or without item fusion) must give the same document as applying all
// updates; diffs must complete a partial peer; state vectors must match.
import * as Y from 'yjs'
import { spawnSync } from 'node:child_process'

const ytool = process.env.YTOOL
let seed = 12345
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
function run (mode, parts) {
  const frames = []
  for (const p of parts) {
    const h = Buffer.alloc(4)
    h.writeUInt32BE(p.length)
    frames.push(h, Buffer.from(p))
  }
  const r = spawnSync(ytool, [mode], { input: Buffer.concat(frames), maxBuffer: 1 << 28 })
  if (r.status !== 0) throw new Error(`ytool ${mode} failed: ${r.stderr}`)
  return new Uint8Array(r.stdout)
}
const json = (d) => JSON.stringify({
  t: d.getText('t').toDelta(),
  a: d.getArray('a').toJSON(),
  m: d.getMap('m').toJSON(),
  x: d.getXmlFragment('x').toString()
})
function fail (m) { console.error('FAIL: ' + m); process.exit(1) }

function history (clients, steps) {
  const docs = []
  const updates = []
  for (let i = 0; i < clients; i++) {
    const d = new Y.Doc({ gc: i % 2 === 0 })
    d.clientID = 1000 + i * 7919
    d.on('update', (u) => updates.push(u))
    docs.push(d)
  }
  for (let s = 0; s < steps; s++) {
    const d = docs[rnd(clients)]
    const t = d.getText('t')
    const a = d.getArray('a')
    switch (rnd(10)) {
      case 0: case 1: t.insert(rnd(t.length + 1), ['x', 'hello', 'é', '😀b', 'ab😀'][rnd(5)]); break
      case 2: if (t.length > 2) t.delete(rnd(t.length - 1), 1 + rnd(2)); break
      case 3: if (t.length > 2) t.format(0, 1 + rnd(t.length - 1), { bold: rnd(2) === 0 ? true : null }); break
      case 4: a.insert(rnd(a.length + 1), [rnd(100), 'str', { o: [1, null, true] }, 1.5, new Uint8Array([1, 2, 3])]); break
      case 5: if (a.length > 1) a.delete(rnd(a.length - 1), 1); break
      case 6: d.getMap('m').set('k' + rnd(4), rnd(3) === 0 ? new Y.Map() : rnd(1000)); break
      case 7: t.insertEmbed(rnd(t.length + 1), { image: 'i' + rnd(9) }); break
      case 8: {
        const el = new Y.XmlElement('p' + rnd(3))
        d.getXmlFragment('x').insert(0, [el, new Y.XmlText('t' + rnd(9))])
        break
      }
      case 9: { // sync two random peers
        const o = docs[rnd(clients)]
        Y.applyUpdate(o, Y.encodeStateAsUpdate(d, Y.encodeStateVector(o)))
        break
      }
    }
  }
  const ref = new Y.Doc()
  for (const u of updates) Y.applyUpdate(ref, u)
  return { updates, ref }
}

for (let round = 0; round < 12; round++) {
  const { updates, ref } = history(2 + rnd(3), 150 + rnd(150))
  const want = json(ref)
  const shuffled = [...updates].sort(() => rnd(3) - 1)
  for (const mode of ['merge', 'merge-plain']) {
    const merged = run(mode, shuffled)
    const d = new Y.Doc()
    Y.applyUpdate(d, merged)
    if (json(d) !== want) fail(`round ${round} ${mode}: document differs`)
    // The merge is itself an update yjs and we both accept again.
    const again = run(mode, [merged, updates[0]])
    const d2 = new Y.Doc()
    Y.applyUpdate(d2, again)
    if (json(d2) !== want) fail(`round ${round} ${mode}: re-merge differs`)
    const sv = Y.decodeStateVector(run('sv', [merged]))
    const refSv = Y.decodeStateVector(Y.encodeStateVector(ref))
    if (JSON.stringify([...sv].sort()) !== JSON.stringify([...refSv].sort())) fail(`round ${round}: state vector`)
  }
  const merged = run('merge', updates)
  // A peer with a prefix of the history catches up from the diff alone.
  const cut = rnd(updates.length)
  const peer = new Y.Doc()
  for (const u of updates.slice(0, cut)) Y.applyUpdate(peer, u)
  const diff = run('diff', [merged, Y.encodeStateVector(peer)])
  Y.applyUpdate(peer, diff)
  if (json(peer) !== want) fail(`round ${round}: diff did not complete the peer`)
  const yDiff = Y.diffUpdate(merged, Y.encodeStateVector(peer))
  if (diff.length > yDiff.length + 64 && diff.length > Y.mergeUpdates(updates).length) fail(`round ${round}: diff too large`)
  // Gaps: a subset merges to the same partial document as applying it.
  const subset = updates.filter(() => rnd(2) === 0)
  const part = new Y.Doc()
  for (const u of subset) Y.applyUpdate(part, u)
  const partMerged = new Y.Doc()
  Y.applyUpdate(partMerged, run('merge', subset.length ? subset : [updates[0]]))
  if (subset.length && json(partMerged) !== json(part)) fail(`round ${round}: subset merge differs`)
  for (const u of updates) Y.applyUpdate(partMerged, u)
  if (json(partMerged) !== want) fail(`round ${round}: subset + rest differs`)
}

// Compaction: 2000 keystrokes merge to about the size of the text.
{
  const d = new Y.Doc()
  const ups = []
  d.on('update', (u) => ups.push(u))
  for (let i = 0; i < 2000; i++) d.getText('t').insert(i, 'k')
  const merged = run('merge', ups)
  const plain = run('merge-plain', ups)
  const r = new Y.Doc()
  Y.applyUpdate(r, merged)
  if (r.getText('t').toString() !== d.getText('t').toString()) fail('keystrokes: text differs')
  if (merged.length > 2100) fail('keystrokes: merged is ' + merged.length + ' bytes')
  if (plain.length < 4 * merged.length) fail('keystrokes: fusion did not shrink the update')
}
// Overwrites: deleted content is collected, so the state stays small.
{
  const d = new Y.Doc()
  const ups = []
  d.on('update', (u) => ups.push(u))
  for (let i = 0; i < 500; i++) d.getMap('m').set('k' + (i % 5), 'v'.repeat(1000) + i)
  const merged = run('merge', ups)
  const r = new Y.Doc()
  Y.applyUpdate(r, merged)
  if (JSON.stringify(r.getMap('m').toJSON()) !== JSON.stringify(d.getMap('m').toJSON())) fail('overwrites: map differs')
  if (merged.length > 20000) fail('overwrites: merged is ' + merged.length + ' bytes')
}
console.log('ok')
