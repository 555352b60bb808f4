// Realtime collaboration benchmark: vellumd (/v1/collab, y-websocket
// protocol) and @hocuspocus/server 3 (its multiplexed protocol), driven by
// the same Node client harness in one run. Both servers run on loopback
// without TLS; vellumd stores every update durably (SQLite, fsync, sealed by
// the crypto barrier) before relaying it, Hocuspocus keeps documents in memory.
//
//   VELLUMD=/path/to/vellumd PLUGIN_DIR=/path/to/plugins node bench.mjs [runs]
//
// Scenarios: (1) 500 docs x 3 clients, 350 updates/s in total: delivery
// latency p50/p99; (2) 1 doc x 50 clients: the highest total update rate
// whose p99 delivery latency stays <= 50 ms; (3) 10,000 idle connections:
// the server's resident memory per connection.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'

const RUNS = Number(process.argv[2] || 3)
const ONLY = process.env.SCENARIOS ? process.env.SCENARIOS.split(',') : ['1', '2', '3']
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.timeOrigin + performance.now()
const pct = (xs, p) => {
  if (!xs.length) return NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}
const median = (xs) => pct(xs, 0.5)
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024

// ---- servers

// POST JSON over http or https (trusting only the given CA), Node core only.
function postJson (url, body, headers, ca) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http
    const req = mod.request(url, { method: 'POST', ca, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = ''
        res.on('data', (d) => { text += d })
        res.on('end', () => resolve(JSON.parse(text)))
      })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

// tls: serve with TLS (the development certificate, trusted by the harness).
// hocuspocus: speak Hocuspocus's protocol to vellumd's /v1/collab-hocuspocus
// (the token in the auth message) instead of y-websocket's.
async function startVellum (docs, base = tmpdir(), { tls = false, hocuspocus = false } = {}) {
  const dir = mkdtempSync(join(base, 'vellum-bench-'))
  const env = { ...process.env, VELLUM_ROOT_KEY: randomBytes(32).toString('base64') }
  const cfg = `[server]\ntls = ${tls}\nthreads = 2\n[log]\nlevel = "warn"\n` +
    '[plugins.crypto]\nroot_key = { env = "VELLUM_ROOT_KEY" }\n' +
    '[plugins.editor]\ncollab = { max_connections_per_user = 100000, max_connections_per_document = 100000, ' +
    'max_messages_per_second = 1000000, message_burst = 1000000 }\n' +
    `[plugins]\ndir = "${process.env.PLUGIN_DIR}"\n`
  writeFileSync(join(dir, 'v.toml'), cfg)
  writeFileSync(join(dir, 'pw'), 'bench password 1234\n')
  const made = spawnSync(process.env.VELLUMD, ['admin', 'create', '--email', 'load@example.com', '--password-file',
    join(dir, 'pw'), '--config', join(dir, 'v.toml'), '--data-dir', join(dir, 'data')], { env })
  if (made.status !== 0) throw new Error('admin create: ' + made.stderr)
  const proc = spawn(process.env.VELLUMD, ['--config', join(dir, 'v.toml'), '--data-dir', join(dir, 'data'),
    '--listen', '127.0.0.1:0', '--ready-file', join(dir, 'ready')], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  while (!existsSync(join(dir, 'ready'))) await sleep(20)
  await sleep(50)
  const url = readFileSync(join(dir, 'ready'), 'utf8').trim()
  const ca = tls ? readFileSync(join(dir, 'data', 'tls', 'dev-cert.pem')) : undefined
  const token = (await postJson(url + '/v1/auth/login', { email: 'load@example.com', password: 'bench password 1234' },
    {}, ca)).token
  const ids = []
  for (let i = 0; i < docs; i++) {
    const r = await postJson(url + '/v1/docs', { type: 'text', content: '' }, { Authorization: 'Bearer ' + token }, ca)
    ids.push(r.id)
  }
  return {
    name: 'vellum',
    pid: proc.pid,
    docs: ids,
    connect: (doc) => hocuspocus
      ? new Client(`${url.replace(/^http/, 'ws')}/v1/collab-hocuspocus`, doc, { token, ca })
      : new Client(`${url.replace(/^http/, 'ws')}/v1/collab/${doc}?access_token=${token}`, null, { ca }),
    stop: async () => { proc.kill('SIGTERM'); await new Promise((resolve) => proc.on('exit', resolve)); rmSync(dir, { recursive: true, force: true }) }
  }
}

async function startHocuspocus (docs) {
  const proc = spawn(process.execPath, [new URL('./hocuspocus-server.mjs', import.meta.url).pathname, '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise((resolve) => proc.stdout.on('data', (d) => {
    const m = /listening (\d+)/.exec(d.toString())
    if (m) resolve(Number(m[1]))
  }))
  const ids = Array.from({ length: docs }, (_, i) => 'doc' + i)
  return {
    name: 'hocuspocus',
    pid: proc.pid,
    docs: ids,
    connect: (doc) => new Client(`ws://127.0.0.1:${port}`, doc),
    stop: async () => { proc.kill('SIGTERM'); await new Promise((resolve) => proc.on('exit', resolve)) }
  }
}

// ---- one client: y-websocket framing, or Hocuspocus's (document name first)

class Client {
  constructor (url, hocusDoc, { apply = true, token = 'bench', ca } = {}) {
    this.doc = new Y.Doc()
    this.hocus = hocusDoc
    this.token = token
    this.apply = apply
    this.synced = false
    this.onLatency = null
    this.ws = new WebSocket(url, { perMessageDeflate: false, ca })
    this.ws.binaryType = 'nodebuffer'
    this.open = new Promise((resolve, reject) => { this.ws.on('open', resolve); this.ws.on('error', reject) })
    this.ws.on('message', (data) => this.receive(data))
    this.doc.on('update', (u, origin) => { if (origin !== 'remote') this.send(0, 2, u) })
    this.doc.getMap('m').observe((e) => {
      if (!e.transaction.origin || !this.onLatency) return
      const t = now()
      for (const k of e.keysChanged) this.onLatency(t - this.doc.getMap('m').get(k))
    })
  }

  async start () {
    await this.open
    if (this.hocus) {
      const e = this.encoder()
      encoding.writeVarUint(e, 2) // auth
      encoding.writeVarUint(e, 0) // token
      encoding.writeVarString(e, this.token)
      this.ws.send(encoding.toUint8Array(e))
    }
    this.send(0, 0, Y.encodeStateVector(this.doc))
  }

  encoder () {
    const e = encoding.createEncoder()
    if (this.hocus) encoding.writeVarString(e, this.hocus)
    return e
  }

  send (type, sub, payload) {
    const e = this.encoder()
    encoding.writeVarUint(e, type)
    encoding.writeVarUint(e, sub)
    encoding.writeVarUint8Array(e, payload)
    if (this.ws.readyState === 1) this.ws.send(encoding.toUint8Array(e))
  }

  receive (data) {
    const d = decoding.createDecoder(data)
    if (this.hocus) decoding.readVarString(d)
    const type = decoding.readVarUint(d)
    if (type !== 0) return
    const sub = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (sub === 0) this.send(0, 1, Y.encodeStateAsUpdate(this.doc, payload))
    else {
      if (sub === 1) this.synced = true
      if (this.apply) Y.applyUpdate(this.doc, payload, 'remote')
    }
  }

  edit (key) { this.doc.getMap('m').set(key, now()) }
  close () { this.ws.terminate() }
}

async function connectAll (server, plan, opts) {
  const clients = []
  for (let i = 0; i < plan.length; i += 100) {
    const batch = plan.slice(i, i + 100).map((doc) => {
      const c = server.connect(doc)
      Object.assign(c, opts)
      return c
    })
    await Promise.all(batch.map((c) => c.start()))
    clients.push(...batch)
  }
  const end = Date.now() + 60000
  while (clients.some((c) => !c.synced) && Date.now() < end) await sleep(20)
  return clients
}

// Sends `rate` updates/s spread over `senders` for `ms`; returns latencies.
async function drive (senders, receivers, rate, ms) {
  const lat = []
  for (const c of receivers) c.onLatency = (x) => lat.push(x)
  const start = now()
  let sent = 0
  while (now() - start < ms) {
    const due = Math.floor(((now() - start) / 1000) * rate)
    for (; sent < due; sent++) senders[sent % senders.length].edit('k' + (sent % senders.length))
    await sleep(2)
  }
  await sleep(300) // let the last deliveries land
  for (const c of receivers) c.onLatency = null
  return lat
}

// ---- scenarios

async function scenario1 (start) {
  const server = await start(500)
  const plan = server.docs.flatMap((d) => [d, d, d])
  const clients = await connectAll(server, plan)
  await drive(clients, clients, 350, 2000) // warm-up
  const lat = await drive(clients, clients, 350, 8000)
  for (const c of clients) c.close()
  await server.stop()
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), samples: lat.length }
}

async function scenario2 (start) {
  const server = await start(1)
  const plan = Array.from({ length: 50 }, () => server.docs[0])
  // Ten clients measure; the other forty only send (the harness is one Node
  // process on shared cores: applying every update in all 50 would measure it).
  const clients = await connectAll(server, plan)
  for (const c of clients.slice(10)) c.apply = false
  let best = 0
  let rate = 20
  const steps = []
  while (rate <= 20000) {
    const lat = await drive(clients, clients.slice(0, 10), rate, 3000)
    const p99 = pct(lat, 0.99)
    steps.push({ rate, p99 })
    if (!(p99 <= 50)) break
    best = rate
    rate = Math.round(rate * 1.4)
  }
  for (const c of clients) c.close()
  await server.stop()
  return { max_rate: best, steps }
}

async function scenario3 (start) {
  const server = await start(100)
  const base = rss(server.pid)
  const plan = Array.from({ length: 10000 }, (_, i) => server.docs[i % server.docs.length])
  const clients = await connectAll(server, plan, { apply: false })
  await sleep(1000)
  const after = rss(server.pid)
  const synced = clients.filter((c) => c.synced).length
  for (const c of clients) c.close()
  await server.stop()
  return { bytes_per_conn: (after - base) / clients.length, synced }
}

// vellum-tmpfs: the same server with its data on tmpfs, where fsync costs
// nothing: the server's own cost without the disk's commit latency.
// vellum-tls: TLS as deployed (opt-in; the harness's own TLS cost would weigh on scenarios 1 and 2).
// vellum-hocuspocus(-tmpfs): the same server, driven through its Hocuspocus endpoint.
const servers = {
  vellum: startVellum,
  'vellum-tmpfs': (n) => startVellum(n, '/dev/shm'),
  'vellum-tls': (n) => startVellum(n, tmpdir(), { tls: true }),
  'vellum-hocuspocus': (n) => startVellum(n, tmpdir(), { hocuspocus: true }),
  'vellum-hocuspocus-tmpfs': (n) => startVellum(n, '/dev/shm', { hocuspocus: true }),
  hocuspocus: startHocuspocus
}
const chosen = process.env.SERVERS ? process.env.SERVERS.split(',') : ['vellum', 'vellum-tmpfs', 'hocuspocus']
for (const k of Object.keys(servers)) if (!chosen.includes(k)) delete servers[k]
const results = {}
for (const [name, fn] of [['1', scenario1], ['2', scenario2], ['3', scenario3]]) {
  if (!ONLY.includes(name)) continue
  for (const [sname, start] of Object.entries(servers)) {
    const runs = []
    for (let r = 0; r < RUNS; r++) {
      const res = await fn(start)
      console.error(`scenario ${name} ${sname} run ${r + 1}: ${JSON.stringify(res)}`)
      runs.push(res)
    }
    results[`${name}.${sname}`] = runs
  }
}
const med = (k, f) => median((results[k] || []).map(f))
const out = { s1: {}, s2: {}, s3: {} }
for (const name of Object.keys(servers)) {
  if (ONLY.includes('1')) out.s1[name] = { p50: med('1.' + name, (r) => r.p50), p99: med('1.' + name, (r) => r.p99) }
  if (ONLY.includes('2')) out.s2[name] = med('2.' + name, (r) => r.max_rate)
  if (ONLY.includes('3')) out.s3[name] = med('3.' + name, (r) => r.bytes_per_conn)
}
console.log(JSON.stringify({ runs: RUNS, medians: out, results }, null, 1))
process.exit(0)
