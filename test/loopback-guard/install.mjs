/**
 * The loopback guard: in a test process, any attempt to reach an address
 * outside loopback (127.0.0.0/8 and ::1) fails, and so does any DNS query,
 * because the resolver of this machine and of CI is a private address. It is
 * plain JavaScript so that child processes can load it too
 * (`child-process.mjs`); `../loopback-guard.ts` installs it in every vitest
 * worker and turns each attempt into a failed test.
 *
 * What it wraps, on the module objects that Node's own code reads at call
 * time:
 * - `net.Socket.prototype.connect` (every TCP and TLS client, `http`, `fetch`):
 *   an IP target outside loopback is refused, naming it; a host name goes to
 *   the lookup, whose answers must be loopback too, whichever lookup function
 *   (`dns.lookup`, a test's stub, an `options.lookup`) gives them.
 * - `dns.lookup` and `dns.promises.lookup`: `localhost` and the names the
 *   hosts file maps only to loopback go to the system resolver, which answers
 *   them from the hosts file; a family the hosts file has no address for is
 *   answered ENOTFOUND here, because the system resolver would ask the DNS
 *   server for it. IP literals pass (no query). Any other name is refused.
 *   A test that stubs `dns.lookup` on the module object (testkit's
 *   `stubLookup`, `vi.spyOn`) takes over from the guard; the names its stub
 *   hands on reach the guard.
 * - `dns.lookupService`, every `resolve*` and `reverse` of `dns`,
 *   `dns.promises` and both `Resolver` classes: they query a DNS server
 *   directly, so they are refused (`lookupService` passes for loopback).
 *
 * Refused calls fail the way the call fails (an 'error' on the socket, an
 * error to the callback, a rejected promise) with the code
 * `ERR_LOOPBACK_GUARD`, and each is reported to `onViolation` with the stack
 * that made it. ES module bindings (`import { lookup } from "node:dns"`) are
 * synced once at install, so they see the guard too.
 *
 * It does not guard UDP sockets, worker threads (their modules are their
 * own) or child processes started with an environment that drops
 * NODE_OPTIONS.
 */
import dns from "node:dns"
import { readFileSync } from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import net from "node:net"

const stateKey = Symbol.for("spoc-mail.loopback-guard")
const guardedKey = Symbol.for("spoc-mail.loopback-guard.guarded")

/** The code of every refused attempt. */
export const refusedCode = "ERR_LOOPBACK_GUARD"

/** An address in 127.0.0.0/8 or ::1, IPv4-mapped loopback included, a zone id ignored. */
export const isLoopbackAddress = (address) => {
  const bare = String(address)
    .replace(/^\[|\]$/g, "")
    .replace(/%.*$/, "")
    .toLowerCase()
  if (net.isIPv4(bare)) return bare.split(".")[0] === "127"
  if (!net.isIPv6(bare)) return false
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare)
  if (mapped !== null) return isLoopbackAddress(mapped[1])
  return expandIpv6(bare) === "0000:0000:0000:0000:0000:0000:0000:0001"
}

const expandIpv6 = (address) => {
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined]
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0")
  return [...left, ...zeros, ...right].map((group) => group.padStart(4, "0")).join(":")
}

/**
 * The names the hosts file maps to loopback only, each with its addresses;
 * `localhost` always, as RFC 6761 section 6.3 reserves it.
 */
const loopbackNames = (hostsFile) => {
  const byName = new Map()
  let text = ""
  try {
    text = readFileSync(hostsFile, "utf8")
  } catch {
    // No hosts file: only localhost.
  }
  for (const line of text.split(/\r?\n/)) {
    const [address, ...names] = line.replace(/#.*/, "").trim().split(/\s+/)
    if (address === undefined || address === "" || net.isIP(address) === 0) continue
    for (const name of names) {
      const key = name.toLowerCase()
      byName.set(key, [...(byName.get(key) ?? []), address])
    }
  }
  for (const [name, addresses] of byName) {
    if (!addresses.every(isLoopbackAddress)) byName.delete(name)
  }
  if (!byName.has("localhost")) byName.set("localhost", ["127.0.0.1", "::1"])
  return byName
}

const refusal = (what) =>
  Object.assign(
    new Error(
      `loopback guard: ${what}; tests reach only 127.0.0.0/8 and ::1 and query no DNS ` +
        "(name a server with testkit's stubLookup)",
    ),
    { code: refusedCode },
  )

const familyOf = (options) => {
  const family = typeof options === "number" ? options : options?.family
  return family === "IPv4" ? 4 : family === "IPv6" ? 6 : Number(family ?? 0)
}

/**
 * Installs the guard once per process; later calls return the same guard.
 * `onViolation(message, stack)` hears of every refused attempt.
 */
export const install = (options = {}) => {
  const existing = globalThis[stateKey]
  if (existing !== undefined) return existing

  const names = loopbackNames(options.hostsFile ?? "/etc/hosts")
  const pending = []
  const report = (error) => {
    const stack = new Error("attempted at").stack ?? ""
    pending.push({ message: error.message, stack })
    options.onViolation?.(error.message, stack)
    return error
  }

  // The answers of any lookup: loopback addresses only.
  const checkedCallback = (hostname, callback) =>
    function (error, address, family) {
      if (error) return callback(error, address, family)
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address]
      const outside = addresses.filter((a) => !isLoopbackAddress(a))
      if (outside.length > 0) {
        return callback(report(refusal(`${hostname} resolved to ${outside.join(", ")}`)))
      }
      return callback(error, address, family)
    }
  const checkedLookup = (lookup) => {
    if (lookup[guardedKey]) return lookup
    const checked = function (hostname, ...rest) {
      const callback = rest.pop()
      return lookup.call(this, hostname, ...rest, checkedCallback(hostname, callback))
    }
    checked[guardedKey] = true
    return checked
  }

  /**
   * How a lookup is answered: undefined lets the system resolver answer (an IP literal, a
   * loopback name of the hosts file); otherwise the error to answer with, and whether it is
   * a refused attempt or only the answer getaddrinfo would give.
   */
  const lookupVerdict = (hostname, options) => {
    if (net.isIP(String(hostname)) !== 0) return undefined
    const name = String(hostname).toLowerCase().replace(/\.$/, "")
    const addresses = names.get(name)
    if (addresses === undefined) {
      return { error: refusal(`dns.lookup("${hostname}") would query DNS`), refused: true }
    }
    const family = familyOf(options)
    if (family !== 0 && !addresses.some((a) => net.isIP(a) === family)) {
      // getaddrinfo would go on to DNS for a family the hosts file lacks; answer as it would.
      const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
        code: "ENOTFOUND",
        syscall: "getaddrinfo",
        hostname,
      })
      return { error, refused: false }
    }
    return undefined
  }

  const systemLookup = dns.lookup
  const guardedLookup = function (hostname, ...rest) {
    const callback = rest[rest.length - 1]
    const verdict = lookupVerdict(hostname, rest.length > 1 ? rest[0] : undefined)
    if (verdict === undefined) {
      return systemLookup.call(
        this,
        hostname,
        ...rest.slice(0, -1),
        checkedCallback(hostname, callback),
      )
    }
    if (verdict.refused) report(verdict.error)
    process.nextTick(() => callback(verdict.error))
    return undefined
  }
  guardedLookup[guardedKey] = true
  dns.lookup = guardedLookup

  const systemPromiseLookup = dns.promises.lookup
  dns.promises.lookup = async function (hostname, options) {
    const verdict = lookupVerdict(hostname, options)
    if (verdict !== undefined) throw verdict.refused ? report(verdict.error) : verdict.error
    const answer = await systemPromiseLookup.call(this, hostname, options)
    const addresses = Array.isArray(answer) ? answer.map((a) => a.address) : [answer.address]
    const outside = addresses.filter((a) => !isLoopbackAddress(a))
    if (outside.length > 0) throw report(refusal(`${hostname} resolved to ${outside.join(", ")}`))
    return answer
  }

  // Queries to a DNS server: refused, whichever way they are asked.
  const refuseQuery = (label, promised) =>
    function (...args) {
      const error = report(refusal(`dns${promised ? ".promises" : ""}.${label}(${args[0]})`))
      if (promised) return Promise.reject(error)
      const callback = args.findLast((arg) => typeof arg === "function")
      if (callback !== undefined) process.nextTick(() => callback(error))
      return undefined
    }
  const isQuery = (key) => /^resolve/.test(key) || key === "reverse"
  for (const [target, promised] of [
    [dns, false],
    [dns.Resolver.prototype, false],
    [dns.promises, true],
    [dns.promises.Resolver.prototype, true],
  ]) {
    for (const key of Object.getOwnPropertyNames(target)) {
      if (isQuery(key) && typeof target[key] === "function") {
        target[key] = refuseQuery(key, promised)
      }
    }
  }
  for (const [target, promised] of [
    [dns, false],
    [dns.promises, true],
  ]) {
    const system = target.lookupService
    target.lookupService = function (address, ...rest) {
      if (isLoopbackAddress(address)) return system.call(this, address, ...rest)
      return refuseQuery("lookupService", promised).call(this, address, ...rest)
    }
  }

  // TCP and TLS clients. Node's net.connect passes its normalised arguments as one array.
  const systemConnect = net.Socket.prototype.connect
  net.Socket.prototype.connect = function (...args) {
    const normalized = Array.isArray(args[0]) ? args[0] : args
    const first = normalized[0]
    const callback = normalized.find((arg) => typeof arg === "function")
    let target
    if (first !== null && typeof first === "object") target = first
    else if (typeof first === "string" && !/^\d+$/.test(first)) target = { path: first }
    else
      target = { port: first, host: typeof normalized[1] === "string" ? normalized[1] : undefined }
    if (target.path !== undefined && target.path !== null) return systemConnect.apply(this, args)

    const host = target.host ?? "localhost"
    if (net.isIP(String(host).replace(/%.*$/, "")) !== 0) {
      if (isLoopbackAddress(host)) return systemConnect.apply(this, args)
      const error = report(refusal(`a connection to ${host}:${target.port} was attempted`))
      process.nextTick(() => this.destroy(error))
      return this
    }

    // A name: whatever answers for it (dns.lookup at connect time, a test's stub, an
    // options.lookup) must answer loopback addresses. The caller's options stay untouched.
    const lookup = checkedLookup(target.lookup ?? ((...lookupArgs) => dns.lookup(...lookupArgs)))
    const guarded = { ...target, lookup }
    if (normalized === args[0]) {
      normalized[0] = guarded
      return systemConnect.apply(this, args)
    }
    return systemConnect.call(this, guarded, ...(callback === undefined ? [] : [callback]))
  }

  // `import { lookup } from "node:dns"` and the like see the guard from now on.
  syncBuiltinESMExports()

  const state = {
    /** Refused attempts since the last call, oldest first. */
    takeViolations: () => pending.splice(0),
  }
  globalThis[stateKey] = state
  return state
}
