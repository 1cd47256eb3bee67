/**
 * Which hosts and addresses never leave this machine. Plain HTTP to the
 * Management Server is allowed only to them, because the response holds
 * `mailpass` and the request may hold the bearer token.
 */
import { isIP } from "node:net"

/** An IP address in 127.0.0.0/8 or ::1 (also IPv4-mapped). */
export const isLoopbackAddress = (address: string): boolean => {
  const bare = address.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  if (isIP(bare) === 4) return bare.startsWith("127.")
  // IPv4-mapped: URL normalises ::ffff:127.0.0.1 to ::ffff:7f00:1.
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(bare)
  return false
}

/** A URL host naming loopback: a loopback address, or `localhost` (checked again on lookup). */
export const isLoopbackHost = (host: string): boolean =>
  host.toLowerCase() === "localhost" || isLoopbackAddress(host)
