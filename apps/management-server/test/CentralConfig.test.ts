import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { CentralConfigError, parseCentralConfig, settingsFor } from "../src/CentralConfig.ts"

const fixture = fileURLToPath(
  new URL("../../../packages/testkit/fixtures/management-server/central.yaml", import.meta.url),
)
const central = parseCentralConfig(fixture, readFileSync(fixture))

const parse = (text: string) => parseCentralConfig("central.yaml", Buffer.from(text, "utf8"))

const refusal = (text: string | Uint8Array): CentralConfigError => {
  try {
    if (typeof text === "string") parse(text)
    else parseCentralConfig("central.yaml", text)
  } catch (error) {
    if (error instanceof CentralConfigError) return error
    throw error
  }
  throw new Error("the file was accepted")
}

describe("the central configuration", () => {
  it("gives a controller in no group the global settings, with their YAML types", () => {
    const served = settingsFor(central, "spoc-hq-01")

    expect(served.groups).toEqual([])
    expect(served.settings).toMatchObject({
      mailserver: "smtp.example.com",
      mailserverbackup: "",
      mailSmtpEncryption: "STARTTLS",
      mailSmtpPort: 587,
      allowCustomCipherSuitesForOutboundCommunication: false,
    })
    expect(served.settings["customCipherSuitesForOutboundCommunication"]).toMatch(
      /^TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .*_CHACHA20_POLY1305_SHA256$/,
    )
  })

  it("overrides the global settings with those of the controller's group", () => {
    const served = settingsFor(central, "spoc-brn01-b")

    expect(served.groups).toEqual(["Branch-BRN01"])
    expect(served.settings).toMatchObject({
      mailserver: "smtp-brn01.example.com",
      mailserverbackup: "smtp-brn01-alt.example.com",
      mailSmtpEncryption: "SSL/TLS",
      mailSmtpPort: 465,
      mailuser: "print-services@example.com",
      mailSmtpTimeout: 10000,
    })
  })

  it("lets a group replace a global value with an empty one", () => {
    const served = settingsFor(central, "spoc-lab02")

    expect(served.settings["mailuser"]).toBe("")
    expect(served.settings["mailpass"]).toBe("")
    expect(served.settings["mailserver"]).toBe("smtp.example.com")
  })

  it("matches controller ids without regard to case", () => {
    expect(settingsFor(central, "SPOC-BRN01-A").groups).toEqual(["Branch-BRN01"])
  })

  it("changes a controller's revision only when what it is served changes", () => {
    const edited = parse(
      readFileSync(fixture, "utf8").replace('mailpass: ""', 'mailpass: "lab-only"'),
    )

    expect(edited.revision).not.toBe(central.revision)
    expect(settingsFor(edited, "spoc-lab02").revision).not.toBe(
      settingsFor(central, "spoc-lab02").revision,
    )
    expect(settingsFor(edited, "spoc-brn01-a").revision).toBe(
      settingsFor(central, "spoc-brn01-a").revision,
    )
  })

  it("serves `key:` with no value as the empty string", () => {
    const config = parse("schemaVersion: 1\nsettings:\n  mailserverbackup:\n")

    expect(config.settings).toEqual({ mailserverbackup: "" })
  })

  it("warns about a controller that is a member of two groups and applies them in order", () => {
    const config = parse(
      [
        "schemaVersion: 1",
        "settings: { mailSmtpPort: 25 }",
        "groups:",
        "  - { name: A, members: [spoc-1], settings: { mailSmtpPort: 465 } }",
        "  - { name: B, members: [SPOC-1], settings: { mailSmtpPort: 587 } }",
      ].join("\n"),
    )

    expect(config.warnings).toEqual([expect.stringMatching(/spoc-1 is a member of A, B/)])
    expect(settingsFor(config, "spoc-1").settings["mailSmtpPort"]).toBe(587)
  })
})

describe("a broken central file", () => {
  it("names the line of a YAML syntax error", () => {
    const error = refusal("schemaVersion: 1\nsettings:\n  mailserver: [smtp.example.com\n")

    expect(error.path).toBe("central.yaml")
    expect(error.line).toBeGreaterThanOrEqual(3)
    expect(error.message).toMatch(/^central\.yaml:\d+: the YAML cannot be read/)
  })

  it("refuses a repeated key, naming its line", () => {
    const error = refusal("schemaVersion: 1\nsettings:\n  mailserver: a\n  mailserver: b\n")

    expect(error.line).toBe(4)
  })

  it("refuses a value written over several lines", () => {
    const error = refusal("schemaVersion: 1\nsettings:\n  mailfrom: |\n    a@example.com\n")

    expect(error.line).toBe(3)
    expect(error.problem).toMatch(/mailfrom has a line break/)
    expect(error.fix).toMatch(/>-/)
  })

  it("refuses a list where a value belongs", () => {
    const error = refusal("schemaVersion: 1\nsettings:\n  mailserver:\n    - a\n    - b\n")

    expect(error.problem).toBe("the value of mailserver is a list")
    expect(error.line).toBe(3)
  })

  it("refuses a misspelt field instead of silently ignoring it", () => {
    const error = refusal(
      "schemaVersion: 1\ngroups:\n  - name: Lab\n    member: [spoc-lab02]\n    settings: {}\n",
    )

    expect(error.line).toBe(4)
    expect(error.problem).toBe('unknown field "member" in groups[0]')
    expect(error.fix).toBe("use only name, members, settings")
  })

  it("refuses another schema version", () => {
    expect(refusal("schemaVersion: 2\nsettings: {}\n").problem).toBe("schemaVersion must be 1")
  })

  it("refuses a member id written as a number, which YAML would have changed", () => {
    const error = refusal("schemaVersion: 1\ngroups:\n  - name: A\n    members: [0042]\n")

    expect(error.problem).toMatch(/member 42 is not a controller id/)
    expect(error.fix).toMatch(/quote/)
  })

  it("refuses two groups with the same name", () => {
    const error = refusal(
      "schemaVersion: 1\ngroups:\n  - name: A\n    members: []\n  - name: A\n    members: []\n",
    )

    expect(error.line).toBe(5)
  })

  it("refuses a file that is not UTF-8", () => {
    const error = refusal(Buffer.from([0x73, 0x3a, 0x20, 0xe9, 0x0a]))

    expect(error.problem).toBe("the file is not UTF-8")
  })
})
