// The peer: @hocuspocus/server 3.x, in memory (no persistence extension),
// in its own process so its resident memory can be read from /proc.
import { Server } from '@hocuspocus/server'

const server = new Server({ port: Number(process.argv[2] || 0), address: '127.0.0.1', quiet: true })
await server.listen()
process.stdout.write(`listening ${server.address.port}\n`)
