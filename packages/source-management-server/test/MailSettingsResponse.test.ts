import { Origin, Settings } from "@spoc-mail/core"
import { render } from "@spoc-mail/management-server"
import * as Redacted from "effect/Redacted"
import { describe, expect, it } from "vitest"
import { checkValue } from "../src/internal/SettingValueCheck.ts"
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

describe("the value of each known setting", () => {
  const withSettings = (settings: Record<string, unknown>) =>
    check({ schemaVersion: 1, revision: "r7", settings })

  it("is refused by its kind's parser, naming the key and the revision", () => {
    const cases: ReadonlyArray<readonly [string, unknown, RegExp]> = [
      ["mailSmtpPort", 70000, /"70000" is not a port number/],
      ["mailSmtpPort", "0", /"0" is not a port number/],
      ["mailSmtpPort", 465.5, /"465\.5" is not a port number/],
      ["mailSmtpPort", true, /"true" is not a port number/],
      ["mailSmtpEncryption", "TLS", /"TLS" is not an encryption mode/],
      ["mailSmtpTimeout", "46five", /"46five" is not a timeout in milliseconds/],
      ["mailSmtpConnectionTimeout", 3_600_001, /is not a timeout in milliseconds/],
      ["mailserver", "smtp.example.com:25", /includes a port/],
      ["mailserverbackup", "smtp://backup.example.com", /is a URL/],
      ["mailfrom", "print@", /is not a valid mailbox|is not a single mailbox/],
      ["cryptographicProtocolsForOutboundCommunication", "TLSv9", /TLSv9/],
      ["allowCustomCipherSuitesForOutboundCommunication", "maybe", /not a yes\/no value/],
      ["customCipherSuitesForOutboundCommunication", "TLS_NOT_A_SUITE", /TLS_NOT_A_SUITE/],
      ["trustStoreType", "ZIP", /"ZIP" is not a trust store type/],
    ]
    for (const [key, value, reason] of cases) {
      const checked = withSettings({ mailserver: "smtp.example.com", [key]: value })

      expect(checked.ok, `${key} = ${String(value)}`).toBe(false)
      if (checked.ok) continue
      expect(checked.refusal.problem).toMatch(new RegExp(`^the value of ${key} is refused: `))
      expect(checked.refusal.problem).toMatch(reason)
      expect(checked.refusal.fix).toMatch(new RegExp(`^correct ${key} on the Management Server`))
      expect(checked.refusal).toMatchObject({ key, revision: "r7" })
    }
  })

  it("accepts what resolution accepts, and keeps it as the server wrote it", () => {
    const settings = {
      mailserver: "[2001:db8::25]",
      mailserverbackup: "10.0.0.25",
      mailfrom: "Print Room <print@example.com>",
      mailSmtpEncryption: "ssl/tls",
      mailSmtpPort: " 0465 ",
      mailSmtpConnectionTimeout: 5000,
      mailSmtpTimeout: "3600000",
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2, TLSv1.3",
      allowCustomCipherSuitesForOutboundCommunication: "Yes",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      trustStorePath: "\\\\fileserver\\certs\\store.jks",
      trustStoreType: "p12",
      allowCustomCipherSuitesForOutboundCommunicationX: "not checked: unknown key",
      mailSmtpPrt: "not a port either",
    }

    const checked = withSettings(settings)

    expect(checked).toEqual({ ok: true, value: { schemaVersion: 1, revision: "r7", settings } })
  })

  it("may be empty, blank or [EMPTY] for every key", () => {
    for (const empty of ["", "   ", "[EMPTY]", " [empty] "]) {
      const settings = Object.fromEntries(Settings.settingKeys.map((key) => [key, empty]))

      expect(withSettings(settings).ok, JSON.stringify(empty)).toBe(true)
    }
  })

  it("of a secret is never quoted in a problem", () => {
    const problem = checkValue("trustStorePassword", "s3cret\u0000tail")

    expect(problem?.problem).toBe("the value cannot be used (not shown: it is a secret)")
    expect(JSON.stringify(problem)).not.toContain("s3cret")
    expect(checkValue("mailpass", "anything at all #;")).toBeUndefined()
  })
})
