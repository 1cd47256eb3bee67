/**
 * IP addresses as people write them. Node prints the IPv6 addresses of a
 * certificate's subject alternative names in full (`0:0:0:0:0:0:0:1`); this
 * gives the short form of RFC 5952 (`::1`) that settings and commands use.
 * Anything that is not an IPv6 address is returned unchanged.
 */
import { isIPv6 } from "node:net"

/** `0:0:0:0:0:0:0:1` as `::1`; other text unchanged. */
export const shortAddress = (text: string): string => {
  if (!isIPv6(text) || text.includes("%")) return text
  // The WHATWG URL parser serialises IPv6 hosts in RFC 5952's canonical form.
  return new URL(`http://[${text}]/`).hostname.slice(1, -1)
}

/** A certificate's `subjectaltname` entry with its IPv6 address shortened. */
export const shortAltName = (entry: string): string => {
  const ip = /^IP Address:(.*)$/.exec(entry)
  return ip === null ? entry : `IP Address:${shortAddress(ip[1]!)}`
}
