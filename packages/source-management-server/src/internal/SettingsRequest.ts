/**
 * One GET of the mail settings over node:https (or node:http to a loopback
 * address), with the limits a controller needs against a slow, hostile or
 * misconfigured server: a connection timeout (TCP and TLS handshake), a read
 * timeout (from the ready connection to the last byte of the body), a size
 * cap enforced while the body streams, and no redirects followed.
 *
 * Certificate verification is always on and uses only the given CAs (system
 * roots plus the trust store); `rejectUnauthorized` is set explicitly so that
 * Node's environment switch for verification cannot turn it off. A failure
 * is reported as a trust failure, never retried over plain HTTP.
 *
 * It does not interpret the response (status, body): `ManagementServerSource`
 * does. It never puts the token in what it returns.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import { TransportFailures } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { isLoopbackAddress } from "./Loopback.ts"

export interface SettingsRequest {
  readonly url: URL
  readonly token: Redacted.Redacted<string> | undefined
  /** PEM CAs: system roots plus the trust store. */
  readonly ca: ReadonlyArray<string>
  readonly ifNoneMatch: string | undefined
  readonly connectTimeoutMs: number
  readonly readTimeoutMs: number
  readonly maxBytes: number
}

/** A complete answer, whatever its status. */
export interface Received {
  readonly _tag: "Received"
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

/**
 * Why no complete answer arrived. `Trust` failures mean the server could not
 * be verified; `Unavailable` ones that it could not be reached or read.
 */
export interface RequestFailed {
  readonly _tag: "RequestFailed"
  readonly kind: "Trust" | "Unavailable"
  readonly detail: string
  readonly fix: string
  /** The setting at fault, when a response was refused for one value. */
  readonly key?: string
}

export type RequestOutcome = Received | RequestFailed

const unavailable = (detail: string, fix: string): RequestFailed => ({
  _tag: "RequestFailed",
  kind: "Unavailable",
  detail,
  fix,
})

const trustReasons = new Set(["CertificateUntrusted", "CertificateExpired", "HostnameMismatch"])

const trustFixes: Readonly<Record<string, string>> = {
  CertificateUntrusted:
    "add the root CA of the Management Server's certificate to the trust store " +
    "(spoc-mail trust fetch shows the chain, spoc-mail trust import adds it)",
  CertificateExpired: "the Management Server's administrator must renew its certificate",
  HostnameMismatch:
    "use in the URL a host name the certificate lists, or have the certificate reissued",
}

const connectFixes: Readonly<Record<string, string>> = {
  DnsFailure: "check the host name in the Management Server URL and this machine's DNS",
  ConnectionRefused: "check the URL's host and port, and that the Management Server is running",
  Unreachable: "check the network route and firewalls to the Management Server",
  ConnectTimeout: "check the URL's host and port, and firewalls that drop packets",
}

/** A lookup that refuses to connect anywhere but loopback: plain HTTP must stay on this host. */
const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: Array<LookupAddress>) => {
    if (error !== null) return callback(error, "", 0)
    const outside = addresses.find((a) => !isLoopbackAddress(a.address))
    if (outside !== undefined || addresses.length === 0) {
      const refused = Object.assign(
        new Error(`${hostname} resolves to ${outside?.address ?? "nothing"}, not loopback`),
        { code: "SPOC_NOT_LOOPBACK" },
      )
      return callback(refused, "", 0)
    }
    if (options.all === true) return (callback as never as AllCallback)(null, addresses)
    return callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}

type AllCallback = (error: Error | null, addresses: Array<LookupAddress>) => void

/** Sends the request; never fails: every problem is a `RequestFailed`. */
export const send = (request: SettingsRequest): Effect.Effect<RequestOutcome> =>
  Effect.callback<RequestOutcome>((resume) => {
    const { url } = request
    const secure = url.protocol === "https:"
    const headers: Record<string, string> = {
      Accept: "application/json, application/yaml;q=0.9",
      "User-Agent": "spoc-mail",
    }
    if (request.token !== undefined) {
      headers["Authorization"] = `Bearer ${Redacted.value(request.token)}`
    }
    if (request.ifNoneMatch !== undefined) headers["If-None-Match"] = request.ifNoneMatch

    let phase: "connect" | "handshake" | "response" | "body" = "connect"
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finish = (outcome: RequestOutcome): void => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      req.destroy()
      resume(Effect.succeed(outcome))
    }
    const arm = (ms: number, onTimeout: () => RequestOutcome): void => {
      if (timer !== undefined) clearTimeout(timer)
      timer = setTimeout(() => finish(onTimeout()), ms)
    }

    const options: https.RequestOptions = {
      method: "GET",
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port === "" ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      ...(secure
        ? { ca: [...request.ca], rejectUnauthorized: true, minVersion: "TLSv1.2" as const }
        : { lookup: loopbackLookup }),
    }
    const req = (secure ? https : http).request(options)

    arm(request.connectTimeoutMs, () =>
      unavailable(
        `${phase === "handshake" ? "the TLS handshake" : "the connection"} did not complete ` +
          `within ${request.connectTimeoutMs} ms`,
        "check the URL's host and port, and firewalls; raise the connection timeout " +
          "only for a slow link",
      ),
    )
    const ready = (): void => {
      phase = "response"
      arm(request.readTimeoutMs, () =>
        unavailable(
          `the response did not arrive within ${request.readTimeoutMs} ms`,
          "check the Management Server's load; raise the read timeout only for a slow link",
        ),
      )
    }
    req.on("socket", (socket) => {
      if (secure) {
        socket.once("connect", () => {
          phase = "handshake"
        })
        socket.once("secureConnect", ready)
      } else {
        socket.once("connect", ready)
      }
    })

    req.on("error", (error: NodeJS.ErrnoException) => {
      if (settled) return
      if (error.code === "SPOC_NOT_LOOPBACK") {
        return finish({
          _tag: "RequestFailed",
          kind: "Trust",
          detail: `plain HTTP is allowed only to this machine, and ${error.message}`,
          fix: "use https:// for a Management Server on another machine",
        })
      }
      if (phase === "connect") {
        const classified = TransportFailures.classifyConnect(error)
        return finish(
          unavailable(
            classified.detail,
            connectFixes[classified.reason] ??
              "check the URL and that the Management Server is running",
          ),
        )
      }
      if (phase === "handshake") {
        const classified = TransportFailures.classifyTls(error, "SSL_TLS")
        if (trustReasons.has(classified.reason)) {
          return finish({
            _tag: "RequestFailed",
            kind: "Trust",
            detail: `${classified.detail} (${error.code ?? error.message})`,
            fix: trustFixes[classified.reason]!,
          })
        }
        return finish(
          unavailable(
            classified.detail,
            classified.reason === "PlaintextWhereTlsExpected"
              ? "the server does not speak HTTPS on this port: check the URL's scheme and port"
              : "check the Management Server's HTTPS configuration (TLS 1.2 or newer)",
          ),
        )
      }
      return finish(
        unavailable(
          `the connection was lost while ${phase === "body" ? "reading" : "waiting for"} ` +
            `the response (${error.code ?? error.message})`,
          "try again; if it repeats, check the Management Server and any proxy in between",
        ),
      )
    })

    req.on("response", (res) => {
      phase = "body"
      const declared = Number(res.headers["content-length"])
      if (Number.isFinite(declared) && declared > request.maxBytes) {
        return finish(tooLarge(request.maxBytes, `${declared} bytes announced`))
      }
      const chunks: Array<Buffer> = []
      let size = 0
      res.on("data", (chunk: Buffer) => {
        size += chunk.byteLength
        if (size > request.maxBytes) return finish(tooLarge(request.maxBytes, "more was sent"))
        chunks.push(chunk)
      })
      res.on("end", () =>
        finish({
          _tag: "Received",
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
        }),
      )
      res.on("error", (error: NodeJS.ErrnoException) =>
        finish(
          unavailable(
            `the connection was lost while reading the response (${error.code ?? error.message})`,
            "try again; if it repeats, check the Management Server and any proxy in between",
          ),
        ),
      )
    })

    req.end()
    return Effect.sync(() => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      req.destroy()
    })
  })

const tooLarge = (maxBytes: number, what: string): RequestFailed =>
  unavailable(
    `the response is larger than the ${maxBytes} bytes allowed (${what})`,
    "check that the URL points at the Management Server's mail-settings API; raise maxBytes " +
      "only if the settings really are that large",
  )
