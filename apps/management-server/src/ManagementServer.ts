/**
 * The reference Management Server: serves each spooler controller its mail
 * settings from a central YAML file (see `CentralConfig.ts`) at
 * `GET /api/v1/controllers/<id>/mail-settings`, as
 * `{ schemaVersion: 1, revision, settings }` in JSON, or in YAML when the
 * client's `Accept` header prefers it.
 *
 * - Every response carries a revision, a hash of exactly what is served, and
 *   the same value as a weak `ETag`; `If-None-Match` with it answers 304.
 * - With a token, every request needs `Authorization: Bearer <token>`. The
 *   token is compared in constant time and never logged.
 * - HTTPS with the given certificate and key; plain HTTP only when bound to a
 *   loopback address, refused otherwise, because the response holds
 *   `mailpass`.
 * - The file is watched and reloaded when it changes. A file that does not
 *   load is reported (`ReloadFailed`) and the last good one keeps being
 *   served. At start a broken file is an error.
 * - A controller that is in no group gets the global settings: the central
 *   settings apply to every controller, groups only override them.
 *
 * It is a reference for tests, the demo and small sites, not a product: no
 * user interface, no persistence other than the file, one process.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { type FSWatcher, watch, watchFile, unwatchFile } from "node:fs"
import { readFile } from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import { isIP } from "node:net"
import { basename, dirname, resolve } from "node:path"
import type { AddressInfo } from "node:net"
import {
  type CentralConfig,
  CentralConfigError,
  controllerIdPattern,
  parseCentralConfig,
  settingsFor,
} from "./CentralConfig.ts"
import { contentTypes, type Format, negotiate, render } from "./internal/Representation.ts"

export interface ManagementServerOptions {
  /** Path of the central YAML file. */
  readonly configPath: string
  /** Address to bind. Default `127.0.0.1`. Plain HTTP is allowed only on loopback. */
  readonly host?: string
  /** Port to bind; `0` (the default) picks a free one, read it from `port` or `url`. */
  readonly port?: number
  /** PEM certificate chain and key: serve HTTPS. Without them, plain HTTP on loopback only. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer }
  /** When set, requests must carry `Authorization: Bearer <token>`. Never logged. */
  readonly token?: string
  /** Reload the file when it changes. Default `true`. */
  readonly watch?: boolean
  /** Receives what happens, for logs and tests. Events never contain the token. */
  readonly onEvent?: (event: ManagementServerEvent) => void
}

export type ManagementServerEvent =
  | { readonly _tag: "Listening"; readonly url: string; readonly revision: string }
  | { readonly _tag: "Reloaded"; readonly revision: string; readonly previous: string }
  | {
      readonly _tag: "ReloadFailed"
      readonly error: CentralConfigError
      /** The revision of the last good file, still served. */
      readonly serving: string
    }
  | { readonly _tag: "Warning"; readonly message: string }
  | {
      readonly _tag: "Served"
      readonly controllerId: string
      readonly groups: ReadonlyArray<string>
      readonly revision: string
      readonly status: 200 | 304
      readonly format: Format
    }
  | {
      readonly _tag: "Refused"
      readonly status: number
      readonly method: string
      readonly path: string
      readonly reason: string
    }

export interface RunningManagementServer {
  /** Base URL, such as `https://127.0.0.1:8443`; give it to the client as is. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly protocol: "http" | "https"
  /** The full URL one controller fetches. */
  readonly mailSettingsUrl: (controllerId: string) => string
  /** The revision of the central file being served. */
  readonly revision: () => string
  /** Reads the file now; on failure the last good file stays in use. */
  readonly reload: () => Promise<ReloadOutcome>
  /** Stops listening, drops open connections and stops watching the file. */
  readonly close: () => Promise<void>
}

export type ReloadOutcome =
  | { readonly _tag: "Loaded"; readonly revision: string; readonly changed: boolean }
  | { readonly _tag: "Failed"; readonly error: CentralConfigError; readonly serving: string }

/** The server cannot start; `message` says why and what to do. */
export class ManagementServerError extends Error {
  override readonly name = "ManagementServerError"
  constructor(
    readonly problem: string,
    readonly fix: string,
    override readonly cause?: unknown,
  ) {
    super(`${problem}. Fix: ${fix}`)
  }
}

const settingsPath = /^\/api\/v1\/controllers\/([^/]+)\/mail-settings\/?$/

/** True for addresses that never leave this machine. */
export const isLoopbackHost = (host: string): boolean => {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  if (bare === "localhost") return true
  if (isIP(bare) === 4) return bare.startsWith("127.")
  // IPv4-mapped, in either spelling (URL writes ::ffff:127.0.0.1 as ::ffff:7f00:1).
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(bare)
  return false
}

const readCentral = async (path: string): Promise<CentralConfig> => {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause)
    throw new CentralConfigError(
      path,
      undefined,
      `the file cannot be read (${code})`,
      "check the path given with --config and the file's permissions",
    )
  }
  return parseCentralConfig(path, bytes)
}

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** Starts a server; resolves once it listens. */
export const startManagementServer = async (
  options: ManagementServerOptions,
): Promise<RunningManagementServer> => {
  const configPath = resolve(options.configPath)
  const host = options.host ?? "127.0.0.1"
  const emit = options.onEvent ?? (() => {})
  const expectedToken = options.token === undefined ? undefined : digest(options.token)

  if (options.token !== undefined && options.token.trim() === "") {
    throw new ManagementServerError("the token is empty", "give a token, or none at all")
  }
  if (options.tls === undefined && !isLoopbackHost(host)) {
    throw new ManagementServerError(
      `refusing to serve plain HTTP on ${host}: the settings include mailpass and would ` +
        "cross the network unencrypted",
      "give a certificate and key (--cert, --key) to serve HTTPS, or bind to 127.0.0.1",
    )
  }

  let central: CentralConfig
  try {
    central = await readCentral(configPath)
  } catch (cause) {
    if (cause instanceof CentralConfigError) {
      const where = `${cause.path}${cause.line === undefined ? "" : `:${cause.line}`}`
      throw new ManagementServerError(
        `${where}: ${cause.problem}`,
        `${cause.fix}, then start again`,
        cause,
      )
    }
    throw cause
  }
  for (const message of central.warnings) emit({ _tag: "Warning", message })

  // Reloads run one after another, so a slow read never overwrites a newer one.
  let reloading: Promise<ReloadOutcome> = Promise.resolve({
    _tag: "Loaded",
    revision: central.revision,
    changed: false,
  })
  const reload = (): Promise<ReloadOutcome> => {
    reloading = reloading.then(async (): Promise<ReloadOutcome> => {
      try {
        const next = await readCentral(configPath)
        const previous = central.revision
        if (next.revision === previous)
          return { _tag: "Loaded", revision: previous, changed: false }
        central = next
        for (const message of next.warnings) emit({ _tag: "Warning", message })
        emit({ _tag: "Reloaded", revision: next.revision, previous })
        return { _tag: "Loaded", revision: next.revision, changed: true }
      } catch (cause) {
        const error =
          cause instanceof CentralConfigError
            ? cause
            : new CentralConfigError(configPath, undefined, String(cause), "check the file")
        emit({ _tag: "ReloadFailed", error, serving: central.revision })
        return { _tag: "Failed", error, serving: central.revision }
      }
    })
    return reloading
  }

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const method = req.method ?? "GET"
    const path = (req.url ?? "/").split("?")[0] ?? "/"
    const refuse = (
      status: number,
      reason: string,
      fix: string,
      headers: Record<string, string> = {},
    ): void => {
      emit({ _tag: "Refused", status, method, path, reason })
      const body = `${JSON.stringify({ error: reason, fix })}\n`
      res.writeHead(status, {
        "Content-Type": contentTypes.json,
        "Content-Length": Buffer.byteLength(body),
        "Cache-Control": "no-store",
        ...headers,
      })
      res.end(method === "HEAD" ? undefined : body)
    }

    const match = settingsPath.exec(path)
    if (match === null) {
      return refuse(404, `no resource at ${path}`, "GET /api/v1/controllers/<id>/mail-settings")
    }
    if (method !== "GET" && method !== "HEAD") {
      return refuse(405, `${method} is not supported`, "use GET", { Allow: "GET, HEAD" })
    }

    if (expectedToken !== undefined) {
      const header = req.headers.authorization ?? ""
      const given = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1]
      if (given === undefined) {
        return refuse(401, "a bearer token is required", "send Authorization: Bearer <token>", {
          "WWW-Authenticate": 'Bearer realm="spoc-mail"',
        })
      }
      if (!timingSafeEqual(digest(given), expectedToken)) {
        return refuse(401, "the bearer token is not valid", "use the token the server was given", {
          "WWW-Authenticate": 'Bearer realm="spoc-mail", error="invalid_token"',
        })
      }
    }

    let controllerId: string
    try {
      controllerId = decodeURIComponent(match[1]!)
    } catch {
      controllerId = ""
    }
    if (!controllerIdPattern.test(controllerId)) {
      return refuse(
        400,
        "the controller id is not valid",
        "use letters, digits, '.', '_' and '-', up to 128 characters",
      )
    }

    const format = negotiate(req.headers.accept)
    if (format === undefined) {
      return refuse(406, "neither JSON nor YAML is acceptable to the client", "accept either")
    }

    const served = settingsFor(central, controllerId)
    const event = {
      controllerId,
      groups: served.groups,
      revision: served.revision,
      format,
    } as const
    const etag = `W/"${served.revision}"`
    const headers = {
      ETag: etag,
      "Cache-Control": "no-store",
      Vary: "Accept, Authorization",
      "X-Content-Type-Options": "nosniff",
    }
    if (matchesEtag(req.headers["if-none-match"], served.revision)) {
      emit({ _tag: "Served", ...event, status: 304 })
      res.writeHead(304, headers)
      return void res.end()
    }
    const body = render(format, {
      schemaVersion: 1,
      revision: served.revision,
      settings: served.settings,
    })
    emit({ _tag: "Served", ...event, status: 200 })
    res.writeHead(200, {
      ...headers,
      "Content-Type": contentTypes[format],
      "Content-Length": Buffer.byteLength(body),
    })
    res.end(method === "HEAD" ? undefined : body)
  }

  let server: http.Server
  try {
    server =
      options.tls === undefined
        ? http.createServer(handle)
        : https.createServer(
            { cert: options.tls.cert, key: options.tls.key, minVersion: "TLSv1.2" },
            handle,
          )
  } catch (cause) {
    throw new ManagementServerError(
      `the certificate or key cannot be used: ${(cause as Error).message}`,
      "give the PEM certificate chain with --cert and its private key with --key",
      cause,
    )
  }
  server.requestTimeout = 10_000
  server.headersTimeout = 10_000

  await new Promise<void>((done, fail) => {
    const onError = (cause: NodeJS.ErrnoException): void =>
      fail(
        new ManagementServerError(
          `cannot listen on ${host}:${options.port ?? 0} (${cause.code ?? cause.message})`,
          cause.code === "EADDRINUSE"
            ? "choose another port with --port, or stop what uses this one"
            : "check --host and --port",
          cause,
        ),
      )
    server.once("error", onError)
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off("error", onError)
      done()
    })
  })

  const address = server.address() as AddressInfo
  const protocol = options.tls === undefined ? "http" : "https"
  const urlHost = isIP(address.address) === 6 ? `[${address.address}]` : address.address
  const url = `${protocol}://${urlHost}:${address.port}`

  const stopWatching = options.watch === false ? () => {} : watchCentral(configPath, reload, emit)

  emit({ _tag: "Listening", url, revision: central.revision })
  return {
    url,
    host: address.address,
    port: address.port,
    protocol,
    mailSettingsUrl: (id) => `${url}/api/v1/controllers/${encodeURIComponent(id)}/mail-settings`,
    revision: () => central.revision,
    reload,
    close: async () => {
      stopWatching()
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    },
  }
}

/** RFC 9110 13.1.2: weak comparison, a list of tags, or `*`. */
const matchesEtag = (header: string | undefined, revision: string): boolean => {
  if (header === undefined) return false
  if (header.trim() === "*") return true
  return header
    .split(",")
    .map((tag) => tag.trim().replace(/^W\//, ""))
    .includes(`"${revision}"`)
}

/**
 * Watches the file's folder rather than the file: editors often save by
 * writing a new file and renaming it over the old one, which a watch on the
 * file itself would not follow. Events come in bursts, so reloads wait a
 * moment for the last one. Where folder watching is unavailable, the file's
 * modification time is polled instead.
 */
const watchCentral = (
  path: string,
  reload: () => Promise<ReloadOutcome>,
  emit: (event: ManagementServerEvent) => void,
): (() => void) => {
  let timer: NodeJS.Timeout | undefined
  const schedule = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      void reload()
    }, 100)
  }
  const name = basename(path)
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) schedule()
    })
    watcher.on("error", (cause) =>
      emit({ _tag: "Warning", message: `watching ${path} stopped: ${cause.message}` }),
    )
  } catch {
    watchFile(path, { persistent: false, interval: 1000 }, schedule)
  }
  return () => {
    if (timer !== undefined) clearTimeout(timer)
    if (watcher !== undefined) watcher.close()
    else unwatchFile(path)
  }
}
