/**
 * A stand-in for the system resolver while a test runs: `stubLookup` puts a
 * function in place of `dns.lookup` on the `node:dns` module object that
 * answers the names it is given without any query, so a test can name a
 * server (`smtp.test`), make a name fail (`ENOTFOUND`), or make a lookup
 * hang, with no DNS server and no network. Names ending in `.invalid`
 * (RFC 6761) that the table does not list fail with `ENOTFOUND`; any other
 * name goes to the function that was there before (the system resolver, or
 * the loopback guard the repository's tests run under).
 *
 * `net.connect` and `tls.connect` read `dns.lookup` from the module object at
 * each connect (Node 20, 22 and 24), and so do spoc-mail's transports, so the
 * stub is what they consult. Code that imported `lookup` by name from
 * `node:dns` keeps the function it imported and does not see the stub.
 *
 * A stub lasts until `restore()`; stubs nest when restored in reverse order.
 * It does not stub `dns.promises` or the `dns.resolve*` family, which ask a
 * DNS server directly and have no business in a test.
 */
import dns from "node:dns"
import * as net from "node:net"

/**
 * What the stub answers for one name: an IP address, a failure with this
 * errno code (`ENOTFOUND`, `EAI_AGAIN`, `EHOSTUNREACH`, ...), or no answer
 * at all (a resolver that never replies).
 */
export type LookupAnswer = string | { readonly error: string } | "no answer"

export interface LookupStub {
  /** Every name the stub was asked about, in order, lower-cased. */
  readonly consulted: ReadonlyArray<string>
  /** Puts back the function that was there before the stub. Safe to call twice. */
  readonly restore: () => void
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | ReadonlyArray<{ address: string; family: number }>,
  family?: number,
) => void

const failure = (host: string, code: string): NodeJS.ErrnoException => {
  const syscall = /^(ENOTFOUND|EAI_)/.test(code) ? "getaddrinfo" : "connect"
  return Object.assign(new Error(`${syscall} ${code} ${host} (stubbed lookup)`), {
    code,
    syscall,
    hostname: host,
  })
}

/**
 * Replaces `dns.lookup` with a stub answering `answers` (names are matched
 * without case and without a final dot) and every other `.invalid` name with
 * `ENOTFOUND`, until `restore()`.
 */
export const stubLookup = (answers: Readonly<Record<string, LookupAnswer>> = {}): LookupStub => {
  const table = new Map(
    Object.entries(answers).map(([name, answer]) => {
      if (typeof answer === "string" && answer !== "no answer" && net.isIP(answer) === 0) {
        throw new Error(`stubLookup: the answer for ${name}, "${answer}", is not an IP address`)
      }
      return [normalise(name), answer] as const
    }),
  )
  const previous = dns.lookup
  const consulted: Array<string> = []

  const stub = function (hostname: string, ...rest: Array<unknown>): void {
    const callback = rest[rest.length - 1] as LookupCallback
    const options = rest.length > 1 ? rest[0] : undefined
    const name = normalise(String(hostname))
    const answer = table.get(name) ?? (name.endsWith(".invalid") ? { error: "ENOTFOUND" } : null)
    if (answer === null) {
      return (previous as (...args: Array<unknown>) => void).call(dns, hostname, ...rest)
    }
    consulted.push(name)
    if (answer === "no answer") return
    const reply = typeof answer === "string" ? addressFor(answer, options) : answer
    process.nextTick(() => {
      if ("error" in reply) return callback(failure(String(hostname), reply.error), "")
      if (reply.all) return callback(null, [{ address: reply.address, family: reply.family }])
      callback(null, reply.address, reply.family)
    })
  }

  dns.lookup = stub as unknown as typeof dns.lookup
  let restored = false
  return {
    consulted,
    restore: () => {
      if (restored) return
      restored = true
      dns.lookup = previous
    },
  }
}

const normalise = (name: string): string => name.toLowerCase().replace(/\.$/, "")

type Reply =
  | { readonly address: string; readonly family: number; readonly all: boolean }
  | { readonly error: string }

/** The answer for an address, or the failure a resolver gives for a family it lacks. */
const addressFor = (ip: string, options: unknown): Reply => {
  const family = net.isIP(ip)
  const fields =
    typeof options === "number"
      ? { family: options }
      : typeof options === "object" && options !== null
        ? (options as { readonly family?: number | string; readonly all?: boolean })
        : {}
  const wanted =
    fields.family === "IPv4" ? 4 : fields.family === "IPv6" ? 6 : Number(fields.family ?? 0)
  if (wanted !== 0 && wanted !== family) return { error: "ENOTFOUND" }
  return { address: ip, family, all: fields.all === true }
}
