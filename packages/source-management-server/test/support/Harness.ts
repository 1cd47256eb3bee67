/**
 * Shared parts of this package's tests: temporary folders, the reference
 * Management Server started on 127.0.0.1 port 0 over HTTP or HTTPS with the
 * fixture PKI, a trust store that holds the fixture root, and a small
 * loopback HTTP server whose answer a test can change between loads.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigSource, TrustStore } from "@spoc-mail/core"
import {
  type ManagementServerEvent,
  type RunningManagementServer,
  startManagementServer,
} from "@spoc-mail/management-server"
import { fixturePath, readFixture } from "@spoc-mail/testkit"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { stringify } from "yaml"

/** The fixture root as a trust store (system roots plus root-ca.crt). */
export const fixtureTrust = (): Promise<TrustStore.TrustStoreShape> =>
  Effect.runPromise(
    TrustStore.load({
      path: fixturePath("pki/root-ca.crt"),
      password: Redacted.make("changeit"),
      type: "auto",
    }),
  )

/** Only the system roots: the fixture PKI is not trusted. */
export const systemTrust = (): TrustStore.TrustStoreShape =>
  TrustStore.fromCertificates(undefined, [])

export const temporaryFolder = (): { readonly path: string; readonly remove: () => void } => {
  const path = mkdtempSync(join(tmpdir(), "spoc-ms-source-"))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

export type Leaf = "server" | "wrong-host" | "expired" | "self-signed"

export interface ReferenceServer {
  readonly server: RunningManagementServer
  readonly events: Array<ManagementServerEvent>
  readonly configPath: string
}

/** The reference server serving `central` (YAML text), over HTTPS when a leaf is given. */
export const startReference = async (options: {
  readonly folder: string
  readonly central?: string
  readonly leaf?: Leaf
  readonly token?: string
}): Promise<ReferenceServer> => {
  const configPath = join(options.folder, "central.yaml")
  writeFileSync(configPath, options.central ?? readFixture("management-server/central.yaml"))
  const events: Array<ManagementServerEvent> = []
  const tls =
    options.leaf === undefined
      ? undefined
      : options.leaf === "self-signed"
        ? {
            cert: readFixture("pki/self-signed.crt", "utf8"),
            key: readFixture("pki/server.key", "utf8"),
          }
        : {
            cert: readFixture(`pki/${options.leaf}.chain.crt`, "utf8"),
            key: readFixture(`pki/${options.leaf}.key`, "utf8"),
          }
  const server = await startManagementServer({
    configPath,
    host: "127.0.0.1",
    port: 0,
    watch: false,
    onEvent: (event) => events.push(event),
    ...(tls === undefined ? {} : { tls }),
    ...(options.token === undefined ? {} : { token: options.token }),
  })
  return { server, events, configPath }
}

/** A central file whose global settings are exactly these strings. */
export const centralWith = (settings: Readonly<Record<string, string>>): string =>
  stringify({ schemaVersion: 1, settings })

/** What a test server answers. */
export interface Reply {
  readonly status?: number
  readonly headers?: Readonly<Record<string, string>>
  /** The body; a string is sent as UTF-8. `undefined` sends headers and then stalls. */
  readonly body?: string | Buffer
}

export interface ScriptedHttpServer {
  readonly url: string
  /** Requests received, with their headers. */
  readonly requests: Array<http.IncomingHttpHeaders>
  reply: (request: http.IncomingMessage) => Reply
  readonly close: () => Promise<void>
}

/** A plain HTTP server on 127.0.0.1 port 0 whose answer the test sets with `reply`. */
export const startScriptedHttp = async (): Promise<ScriptedHttpServer> => {
  const requests: Array<http.IncomingHttpHeaders> = []
  const server = http.createServer((req, res) => {
    requests.push(req.headers)
    const reply = scripted.reply(req)
    res.writeHead(reply.status ?? 200, reply.headers ?? {})
    if (reply.body === undefined) {
      res.flushHeaders()
      return
    }
    res.end(reply.body)
  })
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done))
  const { port } = server.address() as AddressInfo
  const scripted: ScriptedHttpServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply: () => ({ status: 500 }),
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      }),
  }
  return scripted
}

/** A valid JSON reply, as a Management Server would send it. */
export const jsonReply = (
  settings: Readonly<Record<string, unknown>>,
  revision = "r1",
  extra: Readonly<Record<string, unknown>> = {},
): Reply => ({
  headers: { "Content-Type": "application/json", ETag: `"${revision}"` },
  body: JSON.stringify({ schemaVersion: 1, revision, settings, ...extra }),
})

/** The plain value of an entry, secrets revealed (in tests only). */
export const valueOf = (snapshot: ConfigSource.SourceSnapshot, key: string) => {
  const entry = snapshot.entries.find((e) => e.key === key)
  return entry?.value._tag === "Set" ? ConfigSource.reveal(entry.value.value) : undefined
}
