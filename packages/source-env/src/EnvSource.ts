/**
 * The environment config source: one layer named `env` read from `SPOC_`
 * variables. Each setting has one variable, `SPOC_` plus the key in upper
 * snake case (`mailSmtpPort` → `SPOC_MAIL_SMTP_PORT`), and a `_FILE` twin
 * that names a file holding the value, for container secrets
 * (`SPOC_MAILPASS_FILE=/run/secrets/mailpass`).
 *
 * Values are strings, kept byte for byte except a trailing CR (left by
 * `.env` files saved on Windows) and, for `_FILE`, the file's final line
 * break and a UTF-8 BOM. Empty inherits, `[EMPTY]` forces empty, secrets are
 * `Redacted` at once. Parsing numbers, booleans and modes is left to core
 * resolution, which is strict and names the variable in every problem.
 *
 * A `SPOC_` variable that is no setting is reported with a did-you-mean,
 * except those the application reads itself (`SPOC_HOME`, ...). A `_FILE`
 * that cannot be read, or a setting given both ways, fails the load with a
 * `ConfigSourceError` naming the variable: a secret that was meant to be
 * there must not silently fall back to another layer.
 */
import { readFile, stat } from "node:fs/promises"
import { CipherSuites, ConfigSource, Origin, Settings, SettingsResolution } from "@spoc-mail/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The name of the layer this source makes. */
export const layerName = "env"

/** The prefix of every spoc-mail variable. */
export const defaultPrefix = "SPOC_"

/**
 * Variables under the prefix that are not settings: the `spoc-mail` command
 * reads them itself (the controller's home, where the Management Server is,
 * its token, this controller's id), so they are not reported as unknown.
 * Without the prefix; each one's `_FILE` twin is left alone too.
 */
export const applicationVariables: ReadonlyArray<string> = [
  "HOME",
  "MANAGEMENT_SERVER",
  "MANAGEMENT_TOKEN",
  "CONTROLLER_ID",
]

/** A `_FILE` larger than this is refused: a setting is one short line. */
export const maxFileBytes = 64 * 1024

export interface EnvSourceOptions {
  /** The variables to read; default `process.env`, read again on every load. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Default `SPOC_`. */
  readonly prefix?: string
  /**
   * More variables under the prefix that the application reads itself
   * (without the prefix); added to `applicationVariables`.
   */
  readonly applicationVariables?: ReadonlyArray<string>
  /** Match names in any case, as Windows does; default: only on Windows. */
  readonly caseInsensitive?: boolean
}

/** The environment layer as a service, for applications that assemble layers. */
export class EnvSource extends Context.Service<EnvSource, ConfigSource.ConfigSource>()(
  "@spoc-mail/source-env/EnvSource",
) {}

/** The variable of a setting: `variableOf("mailSmtpPort")` is `SPOC_MAIL_SMTP_PORT`. */
export const variableOf = (key: string, prefix: string = defaultPrefix): string =>
  `${prefix}${SettingsResolution.envName(key)}`

const fileSuffix = "_FILE"

const sourceError = (variable: string, message: string, fix: string, cause?: unknown) =>
  new ConfigSource.ConfigSourceError({
    layer: layerName,
    location: variable,
    message,
    fix,
    ...(cause === undefined ? {} : { cause }),
  })

/** Reads the value a `_FILE` variable points at: one line, its line break removed. */
const readValueFile = (
  variable: string,
  path: string,
): Effect.Effect<string, ConfigSource.ConfigSourceError> =>
  Effect.tryPromise({
    try: async () => {
      const info = await stat(path)
      if (!info.isFile()) return { refused: "is not a regular file" }
      if (info.size > maxFileBytes) return { refused: `is larger than ${maxFileBytes} bytes` }
      return { bytes: await readFile(path) }
    },
    catch: (cause) => {
      const code = (cause as NodeJS.ErrnoException).code
      const reason =
        code === "ENOENT"
          ? "does not exist"
          : code === "EACCES" || code === "EPERM"
            ? "cannot be read: permission denied"
            : `cannot be read (${code ?? String(cause)})`
      return sourceError(
        variable,
        `${variable} names ${path}, which ${reason}`,
        `mount or create the file, fix the path in ${variable}, or unset ${variable}`,
        cause,
      )
    },
  }).pipe(
    Effect.flatMap((read) => {
      if ("refused" in read) {
        return Effect.fail(
          sourceError(
            variable,
            `${variable} names ${path}, which ${read.refused}`,
            `point ${variable} at a file that holds only the value`,
          ),
        )
      }
      let text: string
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(read.bytes)
      } catch (cause) {
        return Effect.fail(
          sourceError(
            variable,
            `${variable} names ${path}, which is not valid UTF-8`,
            "save the file as UTF-8",
            cause,
          ),
        )
      }
      // One final line break (LF, CRLF or CR) goes: `echo secret > file` adds it.
      return Effect.succeed(text.replace(/\n$/, "").replace(/\r$/, ""))
    }),
  )

const squash = (name: string): string => name.toUpperCase().replace(/_/g, "")

/** The known variable closest to an unknown one, when it is close enough to be a typo. */
const closest = (name: string, known: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = CipherSuites.editDistance(squash(name), squash(candidate))
    if (d < bestDistance) {
      bestDistance = d
      best = candidate
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 5)) ? best : undefined
}

/** An environment layer reading `options.env` (default `process.env`) on every load. */
export const make = (options: EnvSourceOptions = {}): ConfigSource.ConfigSource => {
  const prefix = options.prefix ?? defaultPrefix
  const caseInsensitive = options.caseInsensitive ?? process.platform === "win32"
  const normal = (name: string): string => (caseInsensitive ? name.toUpperCase() : name)
  const ignored = new Set(
    [...applicationVariables, ...(options.applicationVariables ?? [])].flatMap((name) => [
      normal(prefix + name),
      normal(prefix + name + fileSuffix),
    ]),
  )

  return {
    layer: layerName,
    load: Effect.gen(function* () {
      const env = options.env ?? process.env
      // Every variable under the prefix, by its normalised name.
      const present = new Map<string, { name: string; raw: string }>()
      for (const [name, raw] of Object.entries(env)) {
        if (raw !== undefined && name.toUpperCase().startsWith(prefix.toUpperCase())) {
          present.set(normal(name), { name, raw })
        }
      }
      const used = new Set<string>()
      const take = (variable: string) => {
        const found = present.get(normal(variable))
        if (found !== undefined) used.add(normal(variable))
        return found
      }

      const entries: Array<ConfigSource.SourceEntry> = []
      for (const key of Settings.settingKeys) {
        const variable = variableOf(key, prefix)
        const direct = take(variable)
        const viaFile = take(variable + fileSuffix)
        const fileNamed = viaFile !== undefined && viaFile.raw.trim() !== ""
        if (fileNamed && direct !== undefined && direct.raw.trim() !== "") {
          return yield* sourceError(
            variable,
            `${direct.name} and ${viaFile.name} are both set`,
            `unset one of them: ${viaFile.name} for a secret in a file, ${direct.name} otherwise`,
          )
        }
        if (fileNamed) {
          const value = yield* readValueFile(viaFile.name, viaFile.raw)
          entries.push(
            ConfigSource.entry(
              key,
              value.replace(/^\uFEFF/, ""),
              Origin.env(viaFile.name, viaFile.raw),
            ),
          )
        } else if (direct !== undefined) {
          entries.push(
            ConfigSource.entry(key, direct.raw.replace(/\r$/, ""), Origin.env(direct.name)),
          )
        }
      }

      const known = Settings.settingKeys.flatMap((key) => {
        const variable = variableOf(key, prefix)
        return [variable, variable + fileSuffix]
      })
      const warnings: Array<ConfigSource.ConfigWarning> = []
      for (const [normalName, { name }] of present) {
        if (used.has(normalName) || ignored.has(normalName)) continue
        const suggestion = closest(name, known)
        warnings.push({
          key: name,
          origin: Origin.env(name),
          message: `${name} is not a spoc-mail setting and is ignored`,
          fix:
            suggestion === undefined
              ? `remove it; setting variables are ${prefix} plus the key in upper snake case, ` +
                `such as ${variableOf("mailSmtpPort", prefix)}`
              : `did you mean ${suggestion}?`,
        })
      }
      return { layer: layerName, entries, warnings }
    }),
  }
}

/** The environment layer as a service. */
export const layer = (options: EnvSourceOptions = {}): Layer.Layer<EnvSource> =>
  Layer.succeed(EnvSource, make(options))
