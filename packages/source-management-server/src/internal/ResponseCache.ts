/**
 * The last good response of one Management Server URL for one controller,
 * kept on disk so that a controller can still send mail when the server is
 * down. One JSON file per URL and controller, named by a hash of both, in
 * the cache folder.
 *
 * Written atomically: a temporary file created with mode 0600 in the same
 * folder, flushed, then renamed over the old copy, so a crash leaves either
 * the old copy or the new one, never half of one. The file holds `mailpass`
 * (hence 0600 and a 0700 folder when it creates it) but never the bearer
 * token. A copy is read back through the same checks as a fresh response; a
 * damaged one is ignored with a warning, never used in part.
 */
import { createHash, randomBytes } from "node:crypto"
import { mkdir, open, readFile, rename, rm } from "node:fs/promises"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import { check, type MailSettingsResponse } from "../MailSettingsResponse.ts"

/** What is kept about one response. */
export interface CachedResponse {
  /** The full mail-settings URL it came from. */
  readonly url: string
  readonly controllerId: string
  /** When the server last sent or confirmed (304) this copy, ms since the epoch. */
  readonly confirmedAt: number
  /** The server's ETag, sent back as If-None-Match. */
  readonly etag: string | undefined
  readonly response: MailSettingsResponse
}

export type CacheRead =
  | { readonly _tag: "Found"; readonly cached: CachedResponse }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Damaged"; readonly problem: string }

const cacheFormat = 1

/** The cache file of a URL and controller. */
export const cachePath = (cacheDir: string, url: string, controllerId: string): string => {
  const key = createHash("sha256").update(`${url}\n${controllerId}`).digest("hex").slice(0, 32)
  return join(cacheDir, `mail-settings-${key}.json`)
}

/** An ETag worth sending back: quoted, printable, short. */
export const usableEtag = (etag: string | undefined): string | undefined =>
  etag !== undefined && etag.length <= 256 && /^(W\/)?"[\x21\x23-\x7e]*"$/.test(etag)
    ? etag
    : undefined

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Reads the copy for this URL and controller; never fails. */
export const read = (path: string, url: string, controllerId: string): Effect.Effect<CacheRead> =>
  Effect.promise(async (): Promise<CacheRead> => {
    let text: string
    try {
      text = await readFile(path, "utf8")
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code
      return code === "ENOENT"
        ? { _tag: "Missing" }
        : { _tag: "Damaged", problem: `it cannot be read (${code ?? String(cause)})` }
    }
    let stored: unknown
    try {
      stored = JSON.parse(text)
    } catch {
      return { _tag: "Damaged", problem: "it is not valid JSON" }
    }
    if (
      !isRecord(stored) ||
      stored["cacheFormat"] !== cacheFormat ||
      typeof stored["confirmedAt"] !== "string" ||
      !Number.isFinite(Date.parse(stored["confirmedAt"]))
    ) {
      return { _tag: "Damaged", problem: "it is not a spoc-mail cache file of this version" }
    }
    if (stored["url"] !== url || stored["controllerId"] !== controllerId) {
      return { _tag: "Missing" }
    }
    const checked = check(stored["response"])
    if (!checked.ok) return { _tag: "Damaged", problem: checked.refusal.problem }
    const etag = typeof stored["etag"] === "string" ? usableEtag(stored["etag"]) : undefined
    return {
      _tag: "Found",
      cached: {
        url,
        controllerId,
        confirmedAt: Date.parse(stored["confirmedAt"]),
        etag,
        response: checked.value,
      },
    }
  })

/** Replaces the copy atomically; fails with the reason when the folder cannot be written. */
export const write = (
  cacheDir: string,
  path: string,
  cached: CachedResponse,
): Effect.Effect<void, string> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(cacheDir, { recursive: true, mode: 0o700 })
      const body = JSON.stringify(
        {
          cacheFormat,
          url: cached.url,
          controllerId: cached.controllerId,
          confirmedAt: new Date(cached.confirmedAt).toISOString(),
          etag: cached.etag ?? null,
          response: cached.response,
        },
        null,
        2,
      )
      const temporary = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`
      const file = await open(temporary, "wx", 0o600)
      try {
        try {
          // The umask can only remove bits; set 0600 exactly whatever it is.
          await file.chmod(0o600)
          await file.writeFile(`${body}\n`, "utf8")
          await file.sync()
        } finally {
          await file.close()
        }
        await rename(temporary, path)
      } catch (cause) {
        await rm(temporary, { force: true })
        throw cause
      }
    },
    catch: (cause) => (cause as NodeJS.ErrnoException).code ?? String(cause),
  })
