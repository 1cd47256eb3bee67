/**
 * The spoc.conf config source: one layer named `spoc.conf` read from a file,
 * with origins `spoc.conf:LINE`. Each `load` reads the file again, so an
 * edited file is seen by the next load.
 *
 * A file that is missing, unreadable or not decodable is a
 * `ConfigSourceError` naming the file and the fix: a spoc.conf given by the
 * user must exist. An application that treats a missing default spoc.conf as
 * an empty layer checks for the file before stacking this source.
 *
 * A file over 1 MiB is refused before it is read: a spoc.conf holds a few
 * dozen lines, and a huge one is a wrong path (a log, a dump), whose lines
 * would each become a warning.
 *
 * What the file means line by line is `SpocConfReader.ts`.
 */
import { readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { ConfigSource } from "@spoc-mail/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { decode, layerName, read } from "./SpocConfReader.ts"

export interface SpocConfOptions {
  /** The spoc.conf file to read, as the user gave it; it names the file in origins. */
  readonly path: string
}

/** The spoc.conf layer as a service, for applications that assemble layers. */
export class SpocConfSource extends Context.Service<SpocConfSource, ConfigSource.ConfigSource>()(
  "@spoc-mail/source-spoc-conf/SpocConfSource",
) {}

/** Where the controller keeps spoc.conf: `<spoc home>/conf/modules/spoc.conf`. */
export const defaultPath = (spocHome: string): string =>
  join(spocHome, "conf", "modules", "spoc.conf")

const fixFor = (code: string | undefined): { reason: string; fix: string } => {
  switch (code) {
    case "ENOENT":
      return {
        reason: "does not exist",
        fix: "check the path (--spoc-conf, or <spoc home>/conf/modules/spoc.conf)",
      }
    case "EACCES":
    case "EPERM":
      return {
        reason: "cannot be read: permission denied",
        fix: "give the user running spoc-mail read access to the file",
      }
    case "EISDIR":
      return { reason: "is a folder, not a file", fix: "name the spoc.conf file itself" }
    default:
      return {
        reason: `cannot be read (${code ?? "unknown error"})`,
        fix: "check that the file exists and is readable",
      }
  }
}

/** The largest spoc.conf read. */
export const maxBytes = 1024 * 1024

class TooLarge extends Error {
  constructor(readonly size: number) {
    super(`${size} bytes`)
  }
}

const readBytes = (path: string): Effect.Effect<Uint8Array, ConfigSource.ConfigSourceError> =>
  Effect.tryPromise({
    try: async () => {
      const { size } = await stat(path)
      if (size > maxBytes) throw new TooLarge(size)
      return readFile(path)
    },
    catch: (cause) => {
      if (cause instanceof TooLarge) {
        return new ConfigSource.ConfigSourceError({
          layer: layerName,
          location: path,
          message: `spoc.conf ${path} is ${cause.size} bytes, over the 1 MiB a spoc.conf may be`,
          fix: "check that the path names spoc.conf and not another file",
        })
      }
      const { reason, fix } = fixFor((cause as NodeJS.ErrnoException).code)
      return new ConfigSource.ConfigSourceError({
        layer: layerName,
        location: path,
        message: `spoc.conf ${path} ${reason}`,
        fix,
        cause,
      })
    },
  })

/** A spoc.conf layer reading `options.path` on every load. */
export const make = (options: SpocConfOptions): ConfigSource.ConfigSource => ({
  layer: layerName,
  load: Effect.gen(function* () {
    const bytes = yield* readBytes(options.path)
    const decoded = decode(bytes)
    if (!decoded.ok) {
      return yield* new ConfigSource.ConfigSourceError({
        layer: layerName,
        location: options.path,
        message: `spoc.conf ${options.path} ${decoded.problem}`,
        fix: decoded.fix,
      })
    }
    const { entries, warnings } = read(decoded.text, options.path)
    return { layer: layerName, entries, warnings }
  }),
})

/** The spoc.conf layer as a service. */
export const layer = (options: SpocConfOptions): Layer.Layer<SpocConfSource> =>
  Layer.succeed(SpocConfSource, make(options))
