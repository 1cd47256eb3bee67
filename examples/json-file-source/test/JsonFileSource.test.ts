import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Origin, SettingsResolution } from "@spoc-mail/core"
import { configSourceContract } from "@spoc-mail/testkit/contracts"
import * as Effect from "effect/Effect"
import { afterAll, describe, expect, it } from "vitest"
import { JsonFileSource } from "../src/index.ts"

/** A scratch folder and a writer of numbered JSON files in it. */
const scratch = () => {
  const folder = mkdtempSync(join(tmpdir(), "json-file-source-"))
  let files = 0
  return {
    folder,
    write: (text: string): string => {
      files += 1
      const path = join(folder, `settings-${files}.json`)
      writeFileSync(path, text)
      return path
    },
    remove: () => rmSync(folder, { recursive: true, force: true }),
  }
}

const contract = scratch()
configSourceContract("json-file", {
  make: (settings) => JsonFileSource.make({ path: contract.write(JSON.stringify(settings)) }),
  makeUnreadable: () => JsonFileSource.make({ path: join(contract.folder, "missing.json") }),
  cleanup: contract.remove,
})

const own = scratch()
afterAll(own.remove)

const loadText = (text: string) =>
  Effect.runPromise(Effect.result(JsonFileSource.make({ path: own.write(text) }).load))

describe("json-file source", () => {
  it("gives each key the line it is on", async () => {
    const path = own.write('{\n  "mailserver": "a.example",\n\n  "mailSmtpPort": "587"\n}\n')
    const snapshot = await Effect.runPromise(JsonFileSource.make({ path }).load)
    expect(snapshot.entries.map((e) => e.origin)).toEqual([
      Origin.file(path, 2),
      Origin.file(path, 4),
    ])
  })

  it("refuses a value that is not a string, without showing it", async () => {
    const result = await loadText('{ "mailuser": "svc", "mailpass": 12345678 }')
    expect(result._tag).toBe("Failure")
    const error = (result as { failure: Error & { fix: string } }).failure
    expect(error.message).toMatch(/the value of mailpass \(line 1\) is not a string/)
    expect(error.message + error.fix).not.toContain("12345678")
  })

  it("refuses text that is not a JSON object", async () => {
    for (const text of ["{ mailserver: 1 }", '["mailserver"]', "null"]) {
      expect((await loadText(text))._tag, text).toBe("Failure")
    }
  })

  it("stacks under another layer in resolution", async () => {
    const below = JsonFileSource.make({
      path: own.write('{ "mailserver": "json.example", "mailfrom": "p@example.com" }'),
    })
    const above = JsonFileSource.make({ path: own.write('{ "mailserver": "" }'), layer: "above" })
    const resolution = await Effect.runPromise(SettingsResolution.load([above, below]))

    expect(resolution.settings?.mailserver.host).toBe("json.example")
    expect(resolution.provenance.find((p) => p.key === "mailserver")?.layer).toBe("json-file")
  })
})
