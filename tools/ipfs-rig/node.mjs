// One js-ipfs node for LEARNAE's integration tests, serving the kubo-compatible RPC API.
// Usage: NODE_ENV=test node node.mjs <repo-dir> <config.json>
// The config is checked against the network-safety rules before the node is created,
// and the repo's effective config is checked again before the node starts: any address
// off loopback, any bootstrap peer, discovery, routing, NAT mapping or preload refuses.
import fs from 'node:fs'
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'

const LOOPBACK = /^\/ip4\/127\.0\.0\.1\/tcp\/\d+(\/ws)?$/

function unsafe (config) {
  const faults = []
  const a = config.Addresses ?? {}
  for (const addr of a.Swarm ?? []) if (!LOOPBACK.test(addr)) faults.push(`Addresses.Swarm ${addr}`)
  if (!LOOPBACK.test(a.API ?? '')) faults.push(`Addresses.API ${a.API}`)
  for (const key of ['Gateway', 'RPC']) if (a[key] && !LOOPBACK.test(a[key])) faults.push(`Addresses.${key} ${a[key]}`)
  if ((a.Announce ?? []).length) faults.push('Addresses.Announce not empty')
  if ((a.Delegates ?? []).length) faults.push('Addresses.Delegates not empty')
  if ((config.Bootstrap ?? []).length) faults.push('Bootstrap not empty')
  if (config.Discovery?.MDNS?.Enabled !== false) faults.push('Discovery.MDNS.Enabled not false')
  if (config.Discovery?.webRTCStar?.Enabled !== false) faults.push('Discovery.webRTCStar.Enabled not false')
  if (config.Routing?.Type !== 'none') faults.push(`Routing.Type ${config.Routing?.Type}`)
  if (config.Swarm?.DisableNatPortMap !== true) faults.push('Swarm.DisableNatPortMap not true')
  return faults
}

const [repo, configPath] = process.argv.slice(2)
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'))
let faults = unsafe(config)
if (process.env.NODE_ENV !== 'test') faults.push('NODE_ENV is not test')
if (faults.length) {
  console.error(`refusing to start: ${faults.join('; ')}`)
  process.exit(3)
}

const ipfs = await create({
  repo,
  config,
  start: false,
  silent: true,
  preload: { enabled: false },
  relay: { enabled: false, hop: { enabled: false } },
  init: { algorithm: 'Ed25519' }
})
faults = unsafe(await ipfs.config.getAll())
if (faults.length) {
  console.error(`refusing to start, effective config: ${faults.join('; ')}`)
  process.exit(3)
}
await ipfs.start()
const api = new HttpApi(ipfs)
await api.start()
const id = await ipfs.id()
console.log(JSON.stringify({ ready: true, id: id.id.toString(), addresses: id.addresses.map(String) }))

let stopping = false
// Stop the node first (it releases the repo lock), then the API; never wait on
// long-lived pubsub streams for more than a moment.
const within = (promise, ms) => Promise.race([promise, new Promise(resolve => setTimeout(resolve, ms))])
async function stop () {
  if (stopping) return
  stopping = true
  try { await within(ipfs.stop(), 3000) } catch {}
  try { await within(api.stop(), 500) } catch {}
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
