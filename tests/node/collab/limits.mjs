// Configured limits close with their own codes: 4431 connections per
// document, 4429 messages per second, 1009 message size.
import { env, check, raw, opened, closed, until } from './common.mjs'

// Accepted = the server's sync step 1 arrived; refused = closed without it.
async function accepted (token) {
  for (let i = 0; i < 50; i++) {
    const r = raw(token)
    await until(() => r.messages.length > 0 || r.closeCode !== null, 'first message')
    if (r.messages.length > 0) return r
    check(r.closeCode === 4431, 'unexpected close ' + r.closeCode)
  }
  check(false, 'never accepted')
}

const held = []
for (let i = 0; i < 3; i++) {
  const r = raw(env.BOB)
  await until(() => r.messages.length > 0 || r.closeCode !== null, 'first message')
  check(r.closeCode === null, 'within the per-document limit')
  held.push(r)
}
const extra = raw(env.ADMIN)
await closed(extra)
check(extra.closeCode === 4431, 'per-document limit: ' + extra.closeCode)
for (const r of held) r.ws.close()
for (const r of held) await closed(r)
// The server's on_close may trail the client's: accepted() retries.
const flood = await accepted(env.BOB)
for (let i = 0; i < 40; i++) flood.ws.send(Uint8Array.from([3]))
await closed(flood)
check(flood.closeCode === 4429, 'rate limit: ' + flood.closeCode)

const big = await accepted(env.BOB)
big.ws.send(new Uint8Array(5000))
await closed(big)
check(big.closeCode === 1009, 'size limit: ' + big.closeCode)
console.log('ok')
process.exit(0)
