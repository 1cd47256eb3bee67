/**
 * The address the nodemailer transport connects to: the endpoint's host as
 * the system resolver gives it (`dns.lookup`, that is getaddrinfo: the hosts
 * file, then DNS, in the order the OS is configured with), exactly as
 * `net.connect` resolves it for the raw transport. An IP host is used as it
 * is, without a lookup.
 *
 * Why the transport resolves the name itself: nodemailer's SMTPConnection
 * asks the configured DNS server directly with `dns.resolve4` and
 * `dns.resolve6` (c-ares) and falls back to `dns.lookup` only when they find
 * nothing. c-ares skips the hosts file and the OS resolver order, so
 * `localhost`, or a mail server named only in the hosts file, became a query
 * to the network's DNS server, and the two transports could reach different
 * addresses for one name. Handed an IP address, nodemailer resolves nothing.
 *
 * Only the address changes: SNI still carries the configured name, and core's
 * TlsPolicy verifies the certificate against the endpoint's own host, never
 * against the address. `dns.lookup` is read from the `node:dns` module object
 * at each call, so a replacement installed there (a test's stub) is used.
 *
 * Every address of the name comes back, in the resolver's order, so that
 * the transport can go on to the next one when an address refuses the
 * connection, as `net.connect` does for the raw transport. It keeps no
 * cache. A lookup cannot be cancelled: one that outlives the connection
 * timeout fails the send, and its late answer is ignored.
 */
import dns from "node:dns"
import { isIP } from "node:net"
import * as Effect from "effect/Effect"

/** The system resolver failed, with its error (`ENOTFOUND`, `EAI_AGAIN`, ...). */
export interface LookupFailed {
  readonly _tag: "LookupFailed"
  readonly error: NodeJS.ErrnoException
}

/** The system resolver gave no answer within the time allowed. */
export interface LookupTimedOut {
  readonly _tag: "LookupTimedOut"
  readonly timeoutMs: number
}

export type LookupFailure = LookupFailed | LookupTimedOut

/** The addresses to connect to, the preferred first, and how long the lookup took. */
export interface Resolved {
  readonly addresses: ReadonlyArray<string>
  readonly elapsedMs: number
}

/**
 * Resolves `host` with the system resolver within `timeoutMs`; an IP address
 * is returned at once.
 */
export const resolve = (host: string, timeoutMs: number): Effect.Effect<Resolved, LookupFailure> =>
  isIP(host) !== 0
    ? Effect.succeed({ addresses: [host], elapsedMs: 0 })
    : Effect.callback<Resolved, LookupFailure>((resume) => {
        const started = Date.now()
        let settled = false
        const settle = (outcome: Effect.Effect<Resolved, LookupFailure>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resume(outcome)
        }
        const timer = setTimeout(
          () => settle(Effect.fail({ _tag: "LookupTimedOut", timeoutMs })),
          timeoutMs,
        )
        try {
          dns.lookup(host, { all: true }, (error, found) => {
            if (error !== null) return settle(Effect.fail({ _tag: "LookupFailed", error }))
            const addresses = found.map((entry) => entry.address)
            settle(Effect.succeed({ addresses, elapsedMs: Date.now() - started }))
          })
        } catch (thrown) {
          // dns.lookup throws synchronously on a host it cannot take (an empty name).
          settle(Effect.fail({ _tag: "LookupFailed", error: thrown as NodeJS.ErrnoException }))
        }
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
        })
      })
