// Two clients converge on concurrent edits; a third joining late gets the
// full state; awareness is relayed and cleared when a connection drops.
import { Y, env, provider, synced, until, check, fail } from './common.mjs'

const a = provider(env.BOB)
const b = provider(env.ADMIN)
await synced(a)
await synced(b)
const ta = a.doc.getText('t')
const tb = b.doc.getText('t')
// Concurrent: neither has seen the other's edits when making its own.
for (let i = 0; i < 20; i++) {
  ta.insert(0, 'a' + i + ' ')
  tb.insert(tb.length, 'b' + i + ' ')
  a.doc.getMap('m').set('k' + (i % 3), 'a' + i)
  b.doc.getMap('m').set('k' + (i % 3), 'b' + i)
}
ta.delete(0, 3)
await until(() => ta.toString() === tb.toString() &&
  JSON.stringify(a.doc.getMap('m').toJSON()) === JSON.stringify(b.doc.getMap('m').toJSON()), 'convergence')
const text = ta.toString()
check(text.includes('b19') && text.includes('a18'), 'both sides present: ' + text)

const c = provider(env.BOB)
await synced(c)
await until(() => c.doc.getText('t').toString() === text, 'late client state')
check(JSON.stringify(c.doc.getMap('m').toJSON()) === JSON.stringify(a.doc.getMap('m').toJSON()), 'late map')

// Awareness: b sees a's presence; when a's socket dies without a goodbye, the
// server clears it (long before the 30 s awareness timeout).
a.awareness.setLocalState({ user: 'bob', cursor: 3 })
await until(() => b.awareness.getStates().get(a.doc.clientID)?.user === 'bob', 'awareness relayed')
const aId = a.doc.clientID
a.shouldConnect = false
a.ws.terminate()
await until(() => !b.awareness.getStates().has(aId), 'awareness cleared on drop', 10000)
check(c.doc.getText('t').toString() === text, 'state kept')
for (const p of [a, b, c]) p.destroy()
console.log('ok')
process.exit(0)
void Y
void fail
