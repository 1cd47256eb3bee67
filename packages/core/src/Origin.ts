/**
 * Where a setting came from. Every value that reaches the resolved settings
 * carries one, so `spoc-mail config` and every error can point at the exact
 * line, variable, response or cache file to change.
 *
 * This module only describes and formats origins; sources create them.
 */

/** A value read from a line of a file (spoc.conf and the like). */
export interface FileOrigin {
  readonly _tag: "File"
  readonly path: string
  readonly line: number
}

/** A value read from an environment variable, or from the file a `NAME_FILE` names. */
export interface EnvOrigin {
  readonly _tag: "Env"
  readonly variable: string
  readonly file?: string
}

/** A value served by a remote source such as the Management Server. */
export interface RemoteOrigin {
  readonly _tag: "Remote"
  readonly url: string
  readonly revision?: string
}

/** A value from a cached copy of a remote response, with the age of that copy. */
export interface CacheOrigin {
  readonly _tag: "Cache"
  readonly path: string
  readonly url: string
  readonly revision?: string
  readonly ageMs: number
}

/** A built-in default of spoc-mail. */
export interface DefaultOrigin {
  readonly _tag: "Default"
}

/** A value given by the program itself (a command-line flag, a test). */
export interface ProgramOrigin {
  readonly _tag: "Program"
  readonly description: string
}

export type Origin =
  FileOrigin | EnvOrigin | RemoteOrigin | CacheOrigin | DefaultOrigin | ProgramOrigin

export const file = (path: string, line: number): FileOrigin => ({ _tag: "File", path, line })

export const env = (variable: string, file?: string): EnvOrigin =>
  file === undefined ? { _tag: "Env", variable } : { _tag: "Env", variable, file }

export const defaults: DefaultOrigin = { _tag: "Default" }

export const program = (description: string): ProgramOrigin => ({
  _tag: "Program",
  description,
})

const basename = (path: string): string => path.split(/[\\/]/).pop() ?? path

/** Formats an age in the largest unit that keeps it readable: `42 s`, `5 min`, `3 h`, `2 d`. */
export const formatAge = (ageMs: number): string => {
  const seconds = Math.max(0, Math.round(ageMs / 1000))
  if (seconds < 120) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `${minutes} min`
  const hours = Math.round(minutes / 60)
  if (hours < 48) return `${hours} h`
  return `${Math.round(hours / 24)} d`
}

/**
 * A short, human form: `spoc.conf:12`, `SPOC_MAILSERVER`, `https://ms/api @ r42`,
 * `cache (5 min)`, `default`.
 */
export const format = (origin: Origin): string => {
  switch (origin._tag) {
    case "File":
      return `${basename(origin.path)}:${origin.line}`
    case "Env":
      return origin.file === undefined ? origin.variable : `${origin.variable} (${origin.file})`
    case "Remote":
      return origin.revision === undefined ? origin.url : `${origin.url} @ ${origin.revision}`
    case "Cache":
      return (
        `cache (${formatAge(origin.ageMs)}) of ${origin.url}` +
        (origin.revision === undefined ? "" : ` @ ${origin.revision}`)
      )
    case "Default":
      return "default"
    case "Program":
      return origin.description
  }
}

/** The long form, with the full path for files. */
export const formatLong = (origin: Origin): string =>
  origin._tag === "File" ? `${origin.path}:${origin.line}` : format(origin)
