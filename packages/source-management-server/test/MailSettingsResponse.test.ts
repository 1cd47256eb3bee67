import { Origin } from "@spoc-mail/core"
import { render } from "@spoc-mail/management-server"
import * as Redacted from "effect/Redacted"
import { describe, expect, it } from "vitest"
import {
  check,
  decode,
  maxSettings,
  maxValueLength,
  toEntries,
} from "../src/MailSettingsResponse.ts"

const document = {
  schemaVersion: 1 as const,
  revision: "0123456789abcdef",
  settings: { mailSmtpPort: 465, allowCustomCipherSuitesForOutboundCommunication: true, x: "y" },
}

const problemOf = (value: unknown): string => {
  const checked = check(value)
  return checked.ok ? "accepted" : checked.refusal.problem
}

describe("a mail-settings response", () => {
  it("decodes the reference server's JSON and YAML alike", () => {
    const json = decode(Buffer.from(render("json", document)), "application/json; charset=utf-8")
    const yaml = decode(Buffer.from(render("yaml", document)), "application/yaml")

    expect(json).toEqual({ ok: true, value: document })
    expect(yaml).toEqual(json)
  })

  it("becomes string entries, numbers and booleans as written, secrets Redacted", () => {
    const origin = { _tag: "Remote", url: "https://ms/x", revision: "r" } as const
    const settings = { mailSmtpPort: 465, mailpass: "p", b: false }
    const entries = toEntries({ schemaVersion: 1, revision: "r", settings }, origin)

    expect(entries.map((e) => [e.key, e.value._tag === "Set" && e.value.value])).toEqual([
      ["mailSmtpPort", "465"],
      ["mailpass", expect.anything()],
      ["b", "false"],
    ])
    const pass = entries[1]!.value
    expect(pass._tag === "Set" && Redacted.isRedacted(pass.value)).toBe(true)
    expect(Origin.format(entries[0]!.origin)).toBe("https://ms/x @ r")
  })

  it("accepts a whole-number revision as text", () => {
    const checked = check({ schemaVersion: 1, revision: 42, settings: {} })

    expect(checked.ok && checked.value.revision).toBe("42")
  })

  it("refuses names that are not setting names, including __proto__", () => {
    expect(
      problemOf(JSON.parse('{"schemaVersion":1,"revision":"r","settings":{"__proto__":"x"}}')),
    ).toBe('"__proto__" is not a setting name')
    expect(problemOf({ schemaVersion: 1, revision: "r", settings: { "mail server": "x" } })).toBe(
      '"mail server" is not a setting name',
    )
  })

  it("refuses too many settings, too long a value, a revision with spaces and NaN", () => {
    const many = Object.fromEntries(
      Array.from({ length: maxSettings + 1 }, (_, i) => [`k${i}`, "v"]),
    )

    expect(problemOf({ schemaVersion: 1, revision: "r", settings: many })).toMatch(/more than 256/)
    expect(
      problemOf({
        schemaVersion: 1,
        revision: "r",
        settings: { a: "x".repeat(maxValueLength + 1) },
      }),
    ).toMatch(/longer than 8192/)
    expect(problemOf({ schemaVersion: 1, revision: "r 1", settings: {} })).toMatch(/revision/)
    expect(problemOf({ schemaVersion: 1, revision: "r", settings: { a: Number.NaN } })).toMatch(
      /not a number/,
    )
  })

  it("refuses a charset other than UTF-8 and a missing Content-Type", () => {
    const body = Buffer.from(render("json", document))

    expect(decode(body, "application/json; charset=iso-8859-1")).toMatchObject({
      ok: false,
      refusal: { problem: "the response is in iso-8859-1" },
    })
    expect(decode(body, undefined)).toMatchObject({
      ok: false,
      refusal: { problem: "the response has no Content-Type" },
    })
  })
})
