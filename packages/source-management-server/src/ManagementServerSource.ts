/**
 * The Management Server config source: one layer named `management-server`
 * read from `GET <url>/api/v1/controllers/<id>/mail-settings`.
 *
 * Each load asks the server (HTTPS verified with the trust store, plain HTTP
 * only to loopback, optional bearer token), checks the whole response
 * (`MailSettingsResponse.ts`) and keeps the last good one on disk
 * (`internal/ResponseCache.ts`), sending its ETag as `If-None-Match` so an
 * unchanged response costs a 304. Entries carry the URL and revision as
 * their origin.
 *
 * When the server cannot be reached, times out, answers an error status or
 * something that fails the checks (one bad value refuses the whole
 * response), the cached copy is used with a warning that gives its age and
 * why (origin `Cache` with the age); with no copy, the layer is empty and the
 * warning says so. These are availability problems: mail keeps flowing on
 * the last good settings.
 *
 * A server whose certificate fails verification (untrusted, expired, issued
 * for another name), or an `http://localhost` whose name resolves off this
 * machine, is either an attack or a trust store, certificate or host setup to
 * fix. With a cached copy, the copy is used with a warning that names the
 * failure and its fix, so that an expired certificate does not stop all
 * mail; nothing is sent to that server. With no copy, the load fails with a
 * `ConfigSourceError`: a misconfiguration must be loud. Options that cannot
 * be used (no URL, plain HTTP to another machine, a malformed token) always
 * fail the load before anything is sent. Nothing ever falls back to plain
 * HTTP.
 *
 * The token stays `Redacted`: it is revealed only into the request header,
 * and appears in no error, warning, log or cache file.
 */
import { ConfigSource, Origin, type TrustStore } from "@spoc-mail/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { decode, type MailSettingsResponse, toEntries } from "./MailSettingsResponse.ts"
import { isLoopbackHost } from "./internal/Loopback.ts"
import * as ResponseCache from "./internal/ResponseCache.ts"
import { type Received, type RequestFailed, send } from "./internal/SettingsRequest.ts"

/** The name of the layer this source makes. */
export const layerName = "management-server"

/** Limits used when the options do not give them. */
export const defaults = {
  connectTimeoutMs: 10_000,
  readTimeoutMs: 10_000,
  /** A response holds about fifteen short settings: 256 KiB is generous. */
  maxBytes: 256 * 1024,
} as const

export interface ManagementServerSourceOptions {
  /** The server's base URL, such as `https://ms.example.com:8443`; a path prefix is kept. */
  readonly url: string
  /** This controller's id, as the server's groups name it. */
  readonly controllerId: string
  /** Sent as `Authorization: Bearer <token>`; never shown. */
  readonly token?: Redacted.Redacted<string>
  /** The CAs to verify the server with: the same trust store as the mail server's. */
  readonly trust: TrustStore.TrustStoreShape
  /** Folder of the cached copies (created with mode 0700 when missing). */
  readonly cacheDir: string
  /** Time to connect and finish the TLS handshake. Default 10000 ms. */
  readonly connectTimeoutMs?: number
  /** Time from the ready connection to the last byte of the response. Default 10000 ms. */
  readonly readTimeoutMs?: number
  /** Largest response accepted. Default 256 KiB. */
  readonly maxBytes?: number
}

/** The Management Server layer as a service, for applications that assemble layers. */
export class ManagementServerSource extends Context.Service<
  ManagementServerSource,
  ConfigSource.ConfigSource
>()("@spoc-mail/source-management-server/ManagementServerSource") {}

interface Endpoint {
  /** The full mail-settings URL. */
  readonly url: URL
  readonly controllerId: string
  readonly connectTimeoutMs: number
  readonly readTimeoutMs: number
  readonly maxBytes: number
}

/** The URL as it may be shown: never user information, which could be a password. */
const shownUrl = (raw: string): string => {
  try {
    const url = new URL(raw)
    url.username = ""
    url.password = ""
    return url.toString()
  } catch {
    return raw.replace(/\/\/[^/@]*@/, "//")
  }
}

const optionsError = (url: string, message: string, fix: string) =>
  new ConfigSource.ConfigSourceError({ layer: layerName, location: shownUrl(url), message, fix })

const limit = (
  url: string,
  name: string,
  value: number | undefined,
  fallback: number,
  max: number,
): Effect.Effect<number, ConfigSource.ConfigSourceError> =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(value) && value >= 1 && value <= max
      ? Effect.succeed(value)
      : Effect.fail(
          optionsError(url, `${name} is ${value}`, `give a whole number from 1 to ${max}`),
        )

/** Checks the options before anything is sent. */
const endpointOf = (
  options: ManagementServerSourceOptions,
): Effect.Effect<Endpoint, ConfigSource.ConfigSourceError> =>
  Effect.gen(function* () {
    const raw = options.url.trim()
    let base: URL
    try {
      base = new URL(raw)
    } catch {
      return yield* optionsError(
        raw,
        raw === "" ? "no Management Server URL is given" : "the Management Server URL is invalid",
        "give the server's base URL, such as https://ms.example.com:8443",
      )
    }
    if (base.username !== "" || base.password !== "") {
      return yield* optionsError(
        raw,
        "the Management Server URL holds a user name or password",
        "remove them from the URL and give the bearer token as the source's token " +
          "(spoc-mail reads it from SPOC_MANAGEMENT_TOKEN) instead",
      )
    }
    if (base.protocol !== "https:" && base.protocol !== "http:") {
      return yield* optionsError(raw, `${base.protocol} is not supported`, "use an https:// URL")
    }
    if (base.search !== "" || base.hash !== "") {
      return yield* optionsError(
        raw,
        "the Management Server URL has a query or fragment",
        "give only the base URL; spoc-mail adds /api/v1/controllers/<id>/mail-settings",
      )
    }
    if (base.protocol === "http:" && !isLoopbackHost(base.hostname)) {
      return yield* optionsError(
        raw,
        `plain HTTP to ${base.hostname} would send mailpass and the token unencrypted ` +
          "across the network; http:// is allowed only to this machine " +
          "(127.0.0.1, ::1, localhost)",
        `use https://${base.host}${base.pathname === "/" ? "" : base.pathname}`,
      )
    }

    const controllerId = options.controllerId.trim()
    if (controllerId === "" || controllerId.length > 128 || /[\x00-\x1f\x7f]/.test(controllerId)) {
      return yield* optionsError(
        raw,
        "the controller id is empty, too long or holds control characters",
        "give this controller's id as the Management Server's groups name it",
      )
    }
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(Redacted.value(options.token))) {
      return yield* optionsError(
        raw,
        "the bearer token is empty or holds spaces, line breaks or non-ASCII characters",
        "give the token exactly as the Management Server issued it, on one line",
      )
    }

    const url = new URL(
      `${base.pathname.replace(/\/+$/, "")}/api/v1/controllers/` +
        `${encodeURIComponent(controllerId)}/mail-settings`,
      base,
    )
    return {
      url,
      controllerId,
      connectTimeoutMs: yield* limit(
        raw,
        "connectTimeoutMs",
        options.connectTimeoutMs,
        defaults.connectTimeoutMs,
        3_600_000,
      ),
      readTimeoutMs: yield* limit(
        raw,
        "readTimeoutMs",
        options.readTimeoutMs,
        defaults.readTimeoutMs,
        3_600_000,
      ),
      maxBytes: yield* limit(
        raw,
        "maxBytes",
        options.maxBytes,
        defaults.maxBytes,
        64 * 1024 * 1024,
      ),
    }
  })

/** What one exchange with the server gave. */
type Exchange =
  | {
      readonly _tag: "Fresh"
      readonly response: MailSettingsResponse
      readonly etag: string | undefined
    }
  | { readonly _tag: "NotModified"; readonly cached: ResponseCache.CachedResponse }
  | RequestFailed

const unavailable = (detail: string, fix: string): RequestFailed => ({
  _tag: "RequestFailed",
  kind: "Unavailable",
  detail,
  fix,
})

/** Server text in a message: printable and short. */
const clip = (text: string): string => {
  const printable = text.replace(/[\x00-\x1f\x7f]/g, "?")
  return printable.length > 160 ? `${printable.slice(0, 157)}...` : printable
}

/** The `error` a JSON error body gives, as the reference server sends it. */
const serverSays = (answer: Received): string => {
  try {
    const body: unknown = JSON.parse(answer.body.toString("utf8"))
    const error = (body as { error?: unknown }).error
    return typeof error === "string" ? `: ${clip(error)}` : ""
  } catch {
    return ""
  }
}

const interpret = (
  answer: Received,
  cached: ResponseCache.CachedResponse | undefined,
  endpoint: Endpoint,
): Exchange => {
  const status = answer.status
  if (status === 200) {
    const decoded = decode(answer.body, answer.headers["content-type"])
    if (!decoded.ok) {
      const { problem, fix, key, revision } = decoded.refusal
      const url = endpoint.url.toString()
      const response =
        revision === undefined
          ? `its response from ${url}`
          : `its response ${Origin.format({ _tag: "Remote", url, revision })}`
      return {
        ...unavailable(`${response} was refused whole: ${problem}`, fix),
        ...(key === undefined ? {} : { key }),
      }
    }
    const etag = ResponseCache.usableEtag(answer.headers.etag)
    return { _tag: "Fresh", response: decoded.value, etag }
  }
  if (status === 304) {
    return cached?.etag !== undefined
      ? { _tag: "NotModified", cached }
      : unavailable(
          "it answered 304 Not Modified to a request that had no cached copy",
          "check the Management Server's ETag handling",
        )
  }
  if (status >= 300 && status < 400) {
    return unavailable(
      `it redirects (${status}) to ${clip(String(answer.headers.location ?? "nowhere"))}`,
      "give the final URL: redirects are not followed, so settings cannot be sent elsewhere",
    )
  }
  if (status === 401 || status === 403) {
    return unavailable(
      `it refused the request (${status})${serverSays(answer)}`,
      "give the bearer token the Management Server expects for this controller",
    )
  }
  if (status === 404) {
    return unavailable(
      `it has no mail settings for controller ${endpoint.controllerId} (404)` + serverSays(answer),
      "check the URL and the controller id",
    )
  }
  return unavailable(
    `it answered HTTP ${status}${serverSays(answer)}`,
    "check the Management Server's log; the request is tried again at the next load",
  )
}

/** A source reading the Management Server on every load. */
export const make = (options: ManagementServerSourceOptions): ConfigSource.ConfigSource => ({
  layer: layerName,
  load: Effect.gen(function* () {
    const endpoint = yield* endpointOf(options)
    const url = endpoint.url.toString()
    const path = ResponseCache.cachePath(options.cacheDir, url, endpoint.controllerId)
    const warnings: Array<ConfigSource.ConfigWarning> = []

    const read = yield* ResponseCache.read(path, url, endpoint.controllerId)
    if (read._tag === "Damaged") {
      warnings.push({
        message: `the cached copy ${path} is damaged and was ignored: ${read.problem}`,
        fix: "nothing to do if the server answers: the copy is replaced; else delete the file",
      })
    }
    const cached = read._tag === "Found" ? read.cached : undefined

    const outcome = yield* send({
      url: endpoint.url,
      token: options.token,
      ca: options.trust.ca,
      ifNoneMatch: cached?.etag,
      connectTimeoutMs: endpoint.connectTimeoutMs,
      readTimeoutMs: endpoint.readTimeoutMs,
      maxBytes: endpoint.maxBytes,
    })
    const exchange = outcome._tag === "Received" ? interpret(outcome, cached, endpoint) : outcome
    const now = yield* Clock.currentTimeMillis
    yield* Effect.logDebug(`GET ${url}`).pipe(
      Effect.annotateLogs({
        layer: layerName,
        status: outcome._tag === "Received" ? outcome.status : "none",
        outcome: exchange._tag === "RequestFailed" ? exchange.detail : exchange._tag,
      }),
    )

    if (exchange._tag === "RequestFailed") {
      const trust = exchange.kind === "Trust"
      const why = trust
        ? `the Management Server cannot be trusted: ${exchange.detail}`
        : `the Management Server could not be used: ${exchange.detail}`
      const key = exchange.key === undefined ? {} : { key: exchange.key }
      if (cached === undefined) {
        // Without a copy, a server that cannot be verified is a misconfiguration to fix now.
        if (trust) {
          return yield* new ConfigSource.ConfigSourceError({
            layer: layerName,
            location: url,
            message: `${why}; there is no cached copy to use instead`,
            fix: exchange.fix,
          })
        }
        warnings.push({
          message: `${why}; there is no cached copy, so this layer is empty`,
          ...key,
          fix: exchange.fix,
        })
        return { layer: layerName, entries: [], warnings }
      }
      const origin: Origin.CacheOrigin = {
        _tag: "Cache",
        path,
        url,
        revision: cached.response.revision,
        ageMs: Math.max(0, now - cached.confirmedAt),
      }
      warnings.push({
        message:
          `${why}; using the cached copy of revision ${cached.response.revision} from ` +
          `${Origin.formatAge(origin.ageMs)} ago` +
          (trust ? " until this is fixed; nothing was sent to it" : ""),
        origin,
        ...key,
        fix: exchange.fix,
      })
      return { layer: layerName, entries: toEntries(cached.response, origin), warnings }
    }

    const fresh =
      exchange._tag === "Fresh"
        ? { response: exchange.response, etag: exchange.etag }
        : { response: exchange.cached.response, etag: exchange.cached.etag }
    const written = yield* Effect.result(
      ResponseCache.write(options.cacheDir, path, {
        url,
        controllerId: endpoint.controllerId,
        confirmedAt: now,
        etag: fresh.etag,
        response: fresh.response,
      }),
    )
    if (written._tag === "Failure") {
      warnings.push({
        message:
          `the response could not be cached in ${options.cacheDir} (${written.failure}); ` +
          "if the Management Server becomes unreachable there will be no copy to use",
        fix: "make the cache folder writable by this user",
      })
    }
    const origin: Origin.RemoteOrigin = { _tag: "Remote", url, revision: fresh.response.revision }
    return { layer: layerName, entries: toEntries(fresh.response, origin), warnings }
  }),
})

/** The source as a layer of the `ManagementServerSource` service. */
export const layer = (
  options: ManagementServerSourceOptions,
): Layer.Layer<ManagementServerSource> => Layer.succeed(ManagementServerSource, make(options))
