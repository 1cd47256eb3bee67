import { ConfigSource, Origin } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import {
  type ConfigSourceHarness,
  configSourceChecks,
  configSourceContract,
  ContractViolation,
} from "../src/ConfigSourceContract.ts"

type Entry = ConfigSource.SourceEntry

/** A correct in-memory source; `bend` breaks one behaviour for the negative tests. */
const memoryHarness = (
  bend: (entries: Array<Entry>, settings: Record<string, string>) => Array<Entry> = (e) => e,
): ConfigSourceHarness => ({
  make: (settings) => ({
    layer: "memory",
    load: Effect.sync(() => ({
      layer: "memory",
      entries: bend(
        Object.entries(settings).map(([key, raw]) =>
          ConfigSource.entry(key, raw, Origin.program(`memory:${key}`)),
        ),
        { ...settings },
      ),
      warnings: [],
    })),
  }),
  makeUnreadable: () =>
    Effect.succeed({
      layer: "memory",
      load: Effect.fail(
        new ConfigSource.ConfigSourceError({
          layer: "memory",
          location: "memory://nowhere",
          message: "the store is gone",
          fix: "make the store again",
        }),
      ),
    }),
})

const runCheck = (name: string, harness: ConfigSourceHarness): Promise<void> => {
  const check = configSourceChecks.find((c) => c.name === name)
  if (check === undefined) throw new Error(`no check named ${name}`)
  return check.run(harness)
}

const setTo = (entry: Entry, raw: string): Entry => ({
  ...entry,
  value: { _tag: "Set", value: raw },
})

configSourceContract("in-memory reference source", memoryHarness())

describe("the ConfigSource contract catches a source that", () => {
  it("cuts values at # like an INI reader", async () => {
    const harness = memoryHarness((entries) =>
      entries.map((e) =>
        e.value._tag === "Set" && typeof e.value.value === "string"
          ? setTo(e, e.value.value.split("#")[0]!)
          : e,
      ),
    )
    await expect(runCheck("keeps every byte of a value", harness)).rejects.toThrow(
      /came back as "pa"/,
    )
  })

  it("converts values", async () => {
    const harness = memoryHarness((entries) =>
      entries.map((e) =>
        e.value._tag === "Set" && typeof e.value.value === "string"
          ? setTo(e, e.value.value.toLowerCase())
          : e,
      ),
    )
    await expect(runCheck("returns values as strings, never converted", harness)).rejects.toThrow(
      ContractViolation,
    )
  })

  it("turns an empty value into an empty string", async () => {
    const harness = memoryHarness((entries, settings) =>
      entries.map((e) => (settings[e.key]!.trim() === "" ? setTo(e, "") : e)),
    )
    await expect(
      runCheck("lets an empty value inherit from the layer below", harness),
    ).rejects.toThrow(/must inherit/)
  })

  it("keeps [EMPTY] as text", async () => {
    const harness = memoryHarness((entries, settings) =>
      entries.map((e) => (e.value._tag === "ForceEmpty" ? setTo(e, settings[e.key]!) : e)),
    )
    await expect(runCheck("forces empty with [EMPTY] in any case", harness)).rejects.toThrow(
      /must force empty/,
    )
  })

  it("returns a secret as plain text", async () => {
    const harness = memoryHarness((entries, settings) =>
      entries.map((e) => (e.value._tag === "Set" ? setTo(e, settings[e.key]!) : e)),
    )
    await expect(
      runCheck("returns secrets Redacted and never shows them", harness),
    ).rejects.toThrow(/mailpass must come back Redacted/)
  })

  it("drops keys it does not know", async () => {
    const harness = memoryHarness((entries) => entries.filter((e) => e.key !== "mailSmtpPrt"))
    await expect(
      runCheck("reports an unknown key instead of dropping it", harness),
    ).rejects.toThrow(/mailSmtpPrt was not reported/)
  })

  it("leaves entries without an origin", async () => {
    const harness = memoryHarness((entries) =>
      entries.map((e) => ({ ...e, origin: undefined as unknown as Origin.Origin })),
    )
    await expect(runCheck("gives every entry an origin", harness)).rejects.toThrow(
      /has no usable origin/,
    )
  })

  it("changes between two loads of the same store", async () => {
    let loads = 0
    const harness = memoryHarness((entries) => {
      loads += 1
      return entries.map((e) => ({ ...e, origin: Origin.program(`load ${loads}`) }))
    })
    await expect(runCheck("loads the same snapshot every time", harness)).rejects.toThrow(
      /different snapshots/,
    )
  })

  it("throws instead of failing with a ConfigSourceError", async () => {
    const harness: ConfigSourceHarness = {
      ...memoryHarness(),
      makeUnreadable: () => ({
        layer: "memory",
        load: Effect.fail(new Error("ENOENT") as unknown as ConfigSource.ConfigSourceError),
      }),
    }
    await expect(
      runCheck("fails with a ConfigSourceError when the store cannot be read", harness),
    ).rejects.toThrow(/not a ConfigSourceError/)
  })

  it("loads an unreadable store without complaint", async () => {
    const harness: ConfigSourceHarness = {
      ...memoryHarness(),
      makeUnreadable: () => memoryHarness().make({}),
    }
    await expect(
      runCheck("fails with a ConfigSourceError when the store cannot be read", harness),
    ).rejects.toThrow(/loaded successfully/)
  })
})
