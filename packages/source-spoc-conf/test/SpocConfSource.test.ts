import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { ConfigSource } from "@spoc-mail/core"
import { configSourceContract } from "@spoc-mail/testkit/contracts"
import * as Effect from "effect/Effect"
import { afterAll, describe, expect, it } from "vitest"
import * as SpocConfSource from "../src/SpocConfSource.ts"
import { load, said, scratch } from "./helpers.ts"

const folder = scratch()
afterAll(() => folder.remove())

const failureOf = async (path: string): Promise<ConfigSource.ConfigSourceError> => {
  const result = await Effect.runPromise(Effect.result(SpocConfSource.make({ path }).load))
  if (result._tag === "Success") throw new Error(`${path} loaded`)
  return result.failure
}

let written = 0
configSourceContract("spoc.conf", {
  make: (settings) => {
    written += 1
    const lines = Object.entries(settings).map(([key, raw]) => `${key} = ${raw}\r\n`)
    const path = folder.file(`contract-${written}.spoc.conf`, `# contract\r\n${lines.join("")}`)
    return SpocConfSource.make({ path })
  },
  makeUnreadable: () => SpocConfSource.make({ path: join(folder.dir, "missing.spoc.conf") }),
})

describe("reading the file", () => {
  it("names a missing file and how to fix it", async () => {
    const path = join(folder.dir, "nowhere", "spoc.conf")
    const error = await failureOf(path)

    expect(error).toBeInstanceOf(ConfigSource.ConfigSourceError)
    expect(error.layer).toBe("spoc.conf")
    expect(error.location).toBe(path)
    expect(error.message).toBe(`spoc.conf ${path} does not exist`)
    expect(error.fix).toMatch(/--spoc-conf/)
  })

  it("refuses a file over 1 MiB before reading it, naming its size", async () => {
    const path = folder.file("huge.spoc.conf", "x = y\n".repeat(200_000))
    const error = await failureOf(path)
    expect(error.message).toBe(
      `spoc.conf ${path} is 1200000 bytes, over the 1 MiB a spoc.conf may be`,
    )
    expect(error.fix).toMatch(/names spoc.conf/)
  })

  it("names a folder given instead of a file", async () => {
    const error = await failureOf(folder.dir)
    expect(error.message).toBe(`spoc.conf ${folder.dir} is a folder, not a file`)
  })

  it("refuses a file that is not UTF-8 or UTF-16 with a BOM, naming the file", async () => {
    const path = folder.file("ansi.spoc.conf", Buffer.from("mailfrom = Tiskov\xe9\n", "latin1"))
    const error = await failureOf(path)

    expect(error.location).toBe(path)
    expect(error.message).toContain(path)
    expect(error.message).toMatch(/not valid UTF-8/)
    expect(error.fix).toMatch(/save it as UTF-8/)
  })

  it("reads the file again on every load", async () => {
    const path = folder.file("edited.spoc.conf", "mailSmtpPort = 25\n")
    const source = SpocConfSource.make({ path })
    const first = await Effect.runPromise(source.load)
    writeFileSync(path, "mailSmtpPort = 587\n")
    const second = await Effect.runPromise(source.load)

    expect(said(first, "mailSmtpPort")).toBe("25")
    expect(said(second, "mailSmtpPort")).toBe("587")
  })

  it("names the file in origins as it was given", async () => {
    const path = folder.file("origin.spoc.conf", "\n\nmailserver = a.example\n")
    const snapshot = await load(path)
    expect(snapshot.entries[0]!.origin).toEqual({ _tag: "File", path, line: 3 })
  })

  it("is available as a service layer", async () => {
    const path = folder.file("layer.spoc.conf", "mailserver = a.example\n")
    const snapshot = await Effect.runPromise(
      Effect.gen(function* () {
        const source = yield* SpocConfSource.SpocConfSource
        return yield* source.load
      }).pipe(Effect.provide(SpocConfSource.layer({ path }))),
    )
    expect(said(snapshot, "mailserver")).toBe("a.example")
  })

  it("finds spoc.conf under the controller's home", () => {
    expect(SpocConfSource.defaultPath("/opt/spoc")).toBe("/opt/spoc/conf/modules/spoc.conf")
  })
})
