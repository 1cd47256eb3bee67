/**
 * TLS versions as administrators write them in
 * `cryptographicProtocolsForOutboundCommunication`: one name means exactly
 * that version, a list means that set, `>=TLSv1.2` means that version and
 * newer (`TLSv1.2+` too). Spellings such as `TLS1.2`, `Tls12`, `TLSv1_2`,
 * `TLS 1.2` or `1.2` are accepted; list items are separated by commas,
 * semicolons or spaces.
 *
 * Node takes a range (minVersion, maxVersion), not a set, so a list with a
 * gap (TLSv1 and TLSv1.2 without TLSv1.1) cannot be honoured and is refused
 * with that explanation. SSLv3 and older are not supported by Node at all.
 */
import * as Parsed from "./Parsed.ts"

export const tlsVersions = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const

export type TlsVersion = (typeof tlsVersions)[number]

export interface TlsVersionRange {
  readonly min: TlsVersion
  readonly max: TlsVersion
}

const rank = (version: TlsVersion): number => tlsVersions.indexOf(version)

/** Versions below TLS 1.2 need OpenSSL's security level lowered for that connection. */
export const includesLegacy = (range: TlsVersionRange): boolean => rank(range.min) < 2

export const includes = (range: TlsVersionRange, version: TlsVersion): boolean =>
  rank(range.min) <= rank(version) && rank(version) <= rank(range.max)

export const versionsIn = (range: TlsVersionRange): ReadonlyArray<TlsVersion> =>
  tlsVersions.filter((v) => includes(range, v))

export const format = (range: TlsVersionRange): string =>
  range.min === range.max
    ? range.min
    : range.max === "TLSv1.3"
      ? `>=${range.min}`
      : versionsIn(range).join(",")

/** Normalises one spelling to a version name, or `undefined` when it names none. */
export const normalise = (token: string): TlsVersion | undefined => {
  const compact = token.trim().toLowerCase().replace(/^tls/, "").replace(/^v/, "")
  const digits = compact.replace(/[._\s-]/g, "")
  switch (digits) {
    case "1":
    case "10":
      return "TLSv1"
    case "11":
      return "TLSv1.1"
    case "12":
      return "TLSv1.2"
    case "13":
      return "TLSv1.3"
    default:
      return undefined
  }
}

const fixText = "write one version (TLSv1.2), a list (TLSv1.2,TLSv1.3) or a floor (>=TLSv1.2)"

/** Parses the setting's text into a range, explaining any token it cannot use. */
export const parse = (text: string): Parsed.Parsed<TlsVersionRange> => {
  // "TLS 1.2" is one version, not the tokens "TLS" and "1.2".
  const trimmed = text.trim().replace(/\b(tls|ssl)(v?)\s+(?=\d)/gi, "$1$2")
  const floor = /^>=\s*(.+)$/.exec(trimmed) ?? /^([^\s,;]+)\+$/.exec(trimmed)
  if (floor !== null) {
    const version = normalise(floor[1]!)
    if (version === undefined) return unknownToken(floor[1]!)
    return Parsed.ok({ min: version, max: "TLSv1.3" })
  }

  const tokens = trimmed.split(/[\s,;]+/).filter((t) => t.length > 0)
  if (tokens.length === 0) return Parsed.fail("no TLS version is given", fixText)
  const chosen = new Set<TlsVersion>()
  for (const token of tokens) {
    const version = normalise(token)
    if (version === undefined) return unknownToken(token)
    chosen.add(version)
  }

  const ranks = [...chosen].map(rank).sort((a, b) => a - b)
  const min = ranks[0]!
  const max = ranks[ranks.length - 1]!
  if (max - min + 1 !== ranks.length) {
    const missing = tlsVersions.slice(min, max + 1).filter((v) => !chosen.has(v))
    return Parsed.fail(
      `the versions ${[...chosen].join(", ")} leave out ${missing.join(", ")}; ` +
        "Node can only use a contiguous range of TLS versions",
      `add ${missing.join(", ")} or drop the versions on one side of the gap`,
    )
  }
  return Parsed.ok({ min: tlsVersions[min]!, max: tlsVersions[max]! })
}

const unknownToken = (token: string): Parsed.Parsed<never> => {
  const trimmed = token.trim()
  if (/^sslv2hello$/i.test(trimmed)) {
    return Parsed.fail(
      `"${token}" is a Java handshake format, not a TLS version, and Node does not send it`,
      `remove ${trimmed}; ${fixText}`,
    )
  }
  return /^ssl/i.test(trimmed)
    ? Parsed.fail(`"${token}" is not supported: SSL 3.0 and older are insecure`, fixText)
    : Parsed.fail(`"${token}" is not a TLS version`, fixText)
}
