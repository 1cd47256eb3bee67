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
 * What the stub answers for one name: an IP address, several in the order
 * the resolver gives them (a lookup for one address gets the first), a
 * failure with this errno code (`ENOTFOUND`, `EAI_AGAIN`, `EHOSTUNREACH`,
 * ...), or no answer at all (a resolver that never replies).
 */
export type LookupAnswer = string | ReadonlyArray<string> | { readonly error: string } | "no answer"

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
      const addresses = isAddressList(answer)
        ? answer
        : typeof answer === "string" && answer !== "no answer"
          ? [answer]
          : []
      if (isAddressList(answer) && answer.length === 0) {
        throw new Error(`stubLookup: no address given for ${name}`)
      }
      for (const address of addresses) {
        if (net.isIP(address) === 0) {
          throw new Error(`stubLookup: the answer for ${name}, "${address}", is not an IP address`)
        }
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
    const reply =
      typeof answer === "string"
        ? addressesFor([answer], options)
        : isAddressList(answer)
          ? addressesFor(answer, options)
          : answer
    process.nextTick(() => {
      if ("error" in reply) return callback(failure(String(hostname), reply.error), "")
      if (reply.all) return callback(null, reply.addresses)
      callback(null, reply.addresses[0]!.address, reply.addresses[0]!.family)
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

const isAddressList = (answer: LookupAnswer): answer is ReadonlyArray<string> =>
  Array.isArray(answer)

type Reply =
  | {
      readonly addresses: ReadonlyArray<{ readonly address: string; readonly family: number }>
      readonly all: boolean
    }
  | { readonly error: string }

/**
 * The answer for some addresses, those of the family asked for, or the
 * failure a resolver gives when none is of that family.
 */
const addressesFor = (ips: ReadonlyArray<string>, options: unknown): Reply => {
  const fields =
    typeof options === "number"
      ? { family: options }
      : typeof options === "object" && options !== null
        ? (options as { readonly family?: number | string; readonly all?: boolean })
        : {}
  const wanted =
    fields.family === "IPv4" ? 4 : fields.family === "IPv6" ? 6 : Number(fields.family ?? 0)
  const addresses = ips
    .map((address) => ({ address, family: net.isIP(address) }))
    .filter(({ family }) => wanted === 0 || wanted === family)
  if (addresses.length === 0) return { error: "ENOTFOUND" }
  return { addresses, all: fields.all === true }
}
