// PHASE=write: many small edits (one update each), confirmed by a second
// client; prints the text. PHASE=read (after a vellumd restart): a fresh
// client and the state route must give exactly that text.
import { Y, env, provider, synced, until, check } from './common.mjs'

if (env.PHASE === 'write') {
  const a = provider(env.BOB)
  const b = provider(env.ADMIN)
  await synced(a)
  await synced(b)
  const t = a.doc.getText('t')
  for (let i = 0; i < 300; i++) {
    t.insert(Math.floor(t.length / 2), String.fromCharCode(97 + (i % 26)))
    if (i % 7 === 6) t.delete(Math.floor(t.length / 3), 1)
    if (i % 50 === 0) a.doc.getMap('m').set('i', i)
  }
  t.insert(0, 'é😀 ')
  await until(() => b.doc.getText('t').toString() === t.toString(), 'second client has everything')
  process.stdout.write(t.toString())
  a.destroy()
  b.destroy()
  process.exit(0)
} else {
  const c = provider(env.BOB)
  await synced(c)
  check(c.doc.getText('t').toString() === env.EXPECT, 'text after restart: ' + c.doc.getText('t').toString())
  check(c.doc.getMap('m').get('i') === 250, 'map after restart')
  const res = await fetch(env.VELLUM_URL + `/v1/collab/${env.DOC}/state`, { headers: { Authorization: 'Bearer ' + env.BOB } })
  check(res.status === 200, 'state route')
  const d = new Y.Doc()
  Y.applyUpdate(d, new Uint8Array(await res.arrayBuffer()))
  check(d.getText('t').toString() === env.EXPECT, 'state route text')
  const snap = await fetch(env.VELLUM_URL + `/v1/collab/${env.DOC}/snapshot`, { method: 'POST', headers: { Authorization: 'Bearer ' + env.BOB } })
  check(snap.status === 201, 'snapshot: ' + snap.status + ' ' + await snap.clone().text())
  const body = await snap.json()
  check(body.version >= 2, 'snapshot made a version')
  c.destroy()
  console.log('ok')
  process.exit(0)
}
