/**
 * What a server offers, read from its EHLO reply (RFC 5321 4.1.1.1): the
 * first line names the server, every later line is one extension keyword
 * with its parameters. Every line counts, the last one (`250 STARTTLS`,
 * without a dash) included; keywords and AUTH mechanisms are matched in any
 * case; the old `AUTH=LOGIN PLAIN` form that some servers still send next to
 * (or instead of) `AUTH LOGIN PLAIN` is understood, and both are merged.
 *
 * It knows only the extensions the client uses: STARTTLS (RFC 3207), AUTH
 * (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152)
 * and SMTPUTF8 (RFC 6531). A HELO reply offers nothing.
 */
import type { Reply } from "./Reply.ts"

export interface Capabilities {
  /** Every keyword offered, upper case. */
  readonly keywords: ReadonlySet<string>
  /** AUTH mechanisms offered, upper case; empty when AUTH is not offered. */
  readonly authMechanisms: ReadonlySet<string>
  readonly auth: boolean
  readonly startTls: boolean
  readonly pipelining: boolean
  readonly eightBitMime: boolean
  readonly smtpUtf8: boolean
  /** SIZE offered: the limit in octets, 0 when the server declares none. */
  readonly size: number | undefined
}

/** What a server that only answered HELO offers. */
export const none: Capabilities = {
  keywords: new Set(),
  authMechanisms: new Set(),
  auth: false,
  startTls: false,
  pipelining: false,
  eightBitMime: false,
  smtpUtf8: false,
  size: undefined,
}

/** Reads the capabilities from a positive EHLO reply. */
export const fromEhlo = (reply: Reply): Capabilities => {
  const keywords = new Set<string>()
  const authMechanisms = new Set<string>()
  let auth = false
  let size: number | undefined

  for (const line of reply.lines.slice(1)) {
    const [head = "", ...params] = line.trim().split(/\s+/)
    const upper = head.toUpperCase()
    // `AUTH=LOGIN PLAIN`: the pre-RFC 4954 form, parameters after the `=` and the spaces.
    const oldAuth = /^AUTH=(.*)$/.exec(upper)
    if (oldAuth !== null) {
      auth = true
      keywords.add("AUTH")
      for (const m of [oldAuth[1]!, ...params]) if (m !== "") authMechanisms.add(m.toUpperCase())
      continue
    }
    if (upper === "") continue
    keywords.add(upper)
    if (upper === "AUTH") {
      auth = true
      for (const m of params) authMechanisms.add(m.toUpperCase())
    }
    if (upper === "SIZE") {
      const limit = params[0] === undefined ? 0 : Number(params[0])
      size = Number.isSafeInteger(limit) && limit >= 0 ? limit : 0
    }
  }

  return {
    keywords,
    authMechanisms,
    auth,
    startTls: keywords.has("STARTTLS"),
    pipelining: keywords.has("PIPELINING"),
    eightBitMime: keywords.has("8BITMIME"),
    smtpUtf8: keywords.has("SMTPUTF8"),
    size,
  }
}
