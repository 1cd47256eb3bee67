/**
 * Resolves the controller's settings the way the `spoc-mail` command does:
 * environment over spoc.conf over the Management Server over built-in
 * defaults.
 *
 * The Management Server is reached over HTTPS verified with the controller's
 * trust store, but the trust store's location is itself a setting. So the
 * local layers (environment and spoc.conf) are resolved first to find the
 * trust store, and only then is the Management Server asked. Its own
 * `trustStorePath` applies to mail servers, not to reaching itself.
 */
import { hostname } from "node:os"
import { join } from "node:path"
import { existsSync, readFileSync, statSync } from "node:fs"
import { ConfigSource, SettingsResolution, TrustStore } from "@spoc-mail/core"
import { EnvSource } from "@spoc-mail/source-env"
import { ManagementServerSource } from "@spoc-mail/source-management-server"
import { SpocConfSource } from "@spoc-mail/source-spoc-conf"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { loadPlugin } from "./Plugins.ts"
import { UsageError } from "./Report.ts"
import type { SourceOptions } from "./SourceOptions.ts"

export interface AppSettings {
  readonly spocHome: string
  readonly resolution: SettingsResolution.Resolution
}

export interface LoadOptions extends SourceOptions {
  /** The process environment; replaceable in tests. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** The controller's installation folder: `--spoc-home`, else SPOC_HOME, else the cwd. */
export const spocHomeOf = (
  options: Pick<LoadOptions, "spocHome">,
  env: Readonly<Record<string, string | undefined>>,
): string => Option.getOrElse(options.spocHome, () => env["SPOC_HOME"] || process.cwd())

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

export const loadSettings = (options: LoadOptions) =>
  Effect.gen(function* () {
    const env = options.env ?? process.env
    const spocHome = spocHomeOf(options, env)
    if (!isDirectory(spocHome)) {
      return yield* new UsageError({
        detail: `the spoc home ${spocHome} is not a folder`,
        fix: "give --spoc-home (or SPOC_HOME) the controller's installation folder",
      })
    }
    const resolveOptions = { spocHome }

    const local: Array<ConfigSource.ConfigSource> = []
    if (!options.noEnv) local.push(EnvSource.make({ env }))
    for (const spec of options.source) local.push(yield* loadPlugin(spec, { spocHome, env }))
    const confPath = Option.getOrElse(options.spocConf, () =>
      join(spocHome, "conf", "modules", "spoc.conf"),
    )
    if (Option.isSome(options.spocConf) || existsSync(confPath)) {
      local.push(SpocConfSource.make({ path: confPath }))
    }

    const url = Option.getOrElse(
      options.managementServer,
      () => env["SPOC_MANAGEMENT_SERVER"] ?? "",
    )
    if (url === "") {
      return { spocHome, resolution: yield* SettingsResolution.load(local, resolveOptions) }
    }

    const localResolution = yield* SettingsResolution.load(local, resolveOptions)
    const trust = yield* TrustStore.load(localResolution.trustStore)
    const token = yield* managementToken(env)
    const remote = ManagementServerSource.make({
      url,
      controllerId: Option.getOrElse(
        options.controllerId,
        () => env["SPOC_CONTROLLER_ID"] || hostname(),
      ),
      ...(token === undefined || token === "" ? {} : { token: Redacted.make(token) }),
      trust,
      cacheDir: join(spocHome, "cache", "management-server"),
    })
    const resolution = yield* SettingsResolution.load([...local, remote], resolveOptions)
    return { spocHome, resolution } satisfies AppSettings
  })

/** The bearer token from SPOC_MANAGEMENT_TOKEN, or the file SPOC_MANAGEMENT_TOKEN_FILE names. */
const managementToken = (env: Readonly<Record<string, string | undefined>>) => {
  const file = env["SPOC_MANAGEMENT_TOKEN_FILE"]
  if (file === undefined || file === "") return Effect.succeed(env["SPOC_MANAGEMENT_TOKEN"])
  return Effect.try({
    try: () => readFileSync(file, "utf8").replace(/\r?\n$/, ""),
    catch: (cause) =>
      // A setting of the environment, refused like SPOC_MAILPASS_FILE: a config error.
      new ConfigSource.ConfigSourceError({
        layer: "environment",
        location: "SPOC_MANAGEMENT_TOKEN_FILE",
        message:
          `SPOC_MANAGEMENT_TOKEN_FILE names ${file}, which cannot be read ` +
          `(${(cause as NodeJS.ErrnoException).code ?? String(cause)})`,
        fix: "point SPOC_MANAGEMENT_TOKEN_FILE at a readable file holding the token",
        cause,
      }),
  })
}

export const requireOption = <A>(value: Option.Option<A>, flag: string, fix: string) =>
  Option.isSome(value)
    ? Effect.succeed(value.value)
    : Effect.fail(new UsageError({ detail: `${flag} is required`, fix }))
