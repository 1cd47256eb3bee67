// Shared test helpers: load a spoc.conf and look at what it says about one key.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigSource } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as SpocConfSource from "../src/SpocConfSource.ts"

export const load = (path: string): Promise<ConfigSource.SourceSnapshot> =>
  Effect.runPromise(SpocConfSource.make({ path }).load)

/** What the file says about a key: the text, `Inherit`, `ForceEmpty`, or `undefined`. */
export const said = (snapshot: ConfigSource.SourceSnapshot, key: string): string | undefined => {
  const found = snapshot.entries.filter((e) => e.key === key).at(-1)
  if (found === undefined) return undefined
  return found.value._tag === "Set" ? ConfigSource.reveal(found.value.value) : found.value._tag
}

export const isRedacted = (snapshot: ConfigSource.SourceSnapshot, key: string): boolean => {
  const found = snapshot.entries.find((e) => e.key === key)
  return found?.value._tag === "Set" && Redacted.isRedacted(found.value.value)
}

export const lineOf = (snapshot: ConfigSource.SourceSnapshot, key: string): number | undefined => {
  const origin = snapshot.entries.find((e) => e.key === key)?.origin
  return origin?._tag === "File" ? origin.line : undefined
}

/** Warnings as `LINE: message`, for compact assertions. */
export const warningLines = (snapshot: ConfigSource.SourceSnapshot): Array<string> =>
  snapshot.warnings.map((w) => `${w.origin?._tag === "File" ? w.origin.line : "?"}: ${w.message}`)

/** A temporary folder for files the tests write; `remove` deletes it. */
export const scratch = (): {
  file: (name: string, bytes: string | Uint8Array) => string
  dir: string
  remove: () => void
} => {
  const dir = mkdtempSync(join(tmpdir(), "spoc-conf-test-"))
  return {
    dir,
    file: (name, bytes) => {
      const path = join(dir, name)
      writeFileSync(path, bytes)
      return path
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
