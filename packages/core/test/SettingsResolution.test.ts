import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as ConfigSource from "../src/ConfigSource.ts"
import * as Origin from "../src/Origin.ts"
import { resolve } from "../src/SettingsResolution.ts"

const layer = (name: string, values: Record<string, string>): ConfigSource.SourceSnapshot => ({
  layer: name,
  entries: Object.entries(values).map(([key, raw], i) =>
    ConfigSource.entry(key, raw, Origin.file(`/etc/${name}`, i + 1)),
  ),
  warnings: [],
})

describe("settings resolution", () => {
  it("takes each key from the highest layer that sets or forces it", () => {
    const resolution = resolve([
      layer("env", { mailSmtpPort: "465", mailuser: "" }),
      layer("spoc.conf", { mailserver: "smtp.example.com", mailuser: "[EMPTY]" }),
      layer("management-server", {
        mailserver: "central.example.com",
        mailfrom: "print@example.com",
        mailuser: "svc",
        mailpass: "hunter2",
        mailSmtpEncryption: "ssl/tls",
      }),
    ])

    expect(resolution.problems).toEqual([])
    const settings = resolution.settings!
    expect(settings.mailserver.host).toBe("smtp.example.com")
    expect(settings.port).toBe(465)
    expect(settings.encryption).toBe("SSL_TLS")
    expect(settings.credentials).toBeUndefined()
    const server = resolution.provenance.find((p) => p.key === "mailserver")!
    expect(server.layer).toBe("spoc.conf")
    expect(server.shadowed.map((s) => s.layer)).toEqual(["management-server"])
    const user = resolution.provenance.find((p) => p.key === "mailuser")!
    expect(user.value).toEqual({ _tag: "Empty", forced: true })
  })

  it("reports every problem at once, each with its key, layer and origin", () => {
    const resolution = resolve([
      layer("spoc.conf", { mailSmtpPort: "70000", mailSmtpTimeout: "46five" }),
    ])

    expect(resolution.settings).toBeUndefined()
    const keys = resolution.problems.map((p) => p.key).sort()
    expect(keys).toEqual(["mailSmtpPort", "mailSmtpTimeout", "mailfrom", "mailserver"])
    const port = resolution.problems.find((p) => p.key === "mailSmtpPort")!
    expect(port.layer).toBe("spoc.conf")
    expect(port.origin).toEqual(Origin.file("/etc/spoc.conf", 1))
    expect(port.fix).toMatch(/1 to 65535/)
  })

  it("never shows a secret, only whether it is set", () => {
    const resolution = resolve([
      layer("spoc.conf", {
        mailuser: "svc",
        mailpass: "hunter2",
        mailSmtpEncryption: "SSL_TLS",
        mailserver: "a.example",
        mailfrom: "a@b.c",
      }),
    ])

    const pass = resolution.provenance.find((p) => p.key === "mailpass")!
    expect(pass.value).toEqual({ _tag: "Secret", set: true })
    expect(JSON.stringify(resolution)).not.toContain("hunter2")
    const password = resolution.settings!.credentials!.password
    expect(String(password)).not.toContain("hunter2")
    expect(Redacted.value(password)).toBe("hunter2")
  })

  it("warns about unknown keys with a suggestion", () => {
    const resolution = resolve([layer("spoc.conf", { mailSmtpEncription: "STARTTLS" })])

    expect(resolution.warnings[0]?.message).toMatch(/unknown key "mailSmtpEncription"/)
    expect(resolution.warnings[0]?.fix).toBe("did you mean mailSmtpEncryption?")
  })

  it("refuses to send credentials in clear when no encryption mode was chosen", () => {
    const resolution = resolve([
      layer("spoc.conf", {
        mailserver: "a.example",
        mailfrom: "a@b.c",
        mailuser: "svc",
        mailpass: "hunter2",
        mailSmtpEncription: "STARTTLS_REQUIRED",
      }),
    ])

    expect(resolution.settings).toBeUndefined()
    expect(resolution.problems).toEqual([
      expect.objectContaining({
        key: "mailSmtpEncryption",
        origin: Origin.file("/etc/spoc.conf", 3),
      }),
    ])
    expect(resolution.warnings.map((w) => w.message)).toContainEqual(
      expect.stringMatching(/unknown key "mailSmtpEncription"/),
    )
  })

  it("sends credentials in clear only when NONE is chosen on purpose, with a warning", () => {
    const resolution = resolve([
      layer("spoc.conf", {
        mailserver: "a.example",
        mailfrom: "a@b.c",
        mailuser: "svc",
        mailSmtpEncryption: "NONE",
      }),
    ])

    expect(resolution.problems).toEqual([])
    expect(resolution.warnings).toContainEqual(
      expect.objectContaining({
        key: "mailSmtpEncryption",
        origin: Origin.file("/etc/spoc.conf", 4),
        message: expect.stringMatching(/clear text/),
      }),
    )
  })

  it("does not take a refused encryption mode for NONE in its warnings", () => {
    const resolution = resolve([
      layer("spoc.conf", {
        mailserver: "a.example",
        mailfrom: "a@b.c",
        mailuser: "svc",
        mailpass: "pw",
        mailSmtpEncryption: "TLS",
      }),
    ])

    expect(resolution.problems.map((p) => p.key)).toEqual(["mailSmtpEncryption"])
    expect(resolution.warnings.map((w) => w.message)).not.toContainEqual(
      expect.stringMatching(/encryption is NONE/),
    )
  })

  it("shows the default trust store when <spoc home>/conf/ssl-truststore exists", () => {
    const resolution = resolve([layer("spoc.conf", {})], {
      spocHome: "/opt/spoc",
      exists: (path) => path === "/opt/spoc/conf/ssl-truststore",
    })

    expect(resolution.trustStore.path).toBe("/opt/spoc/conf/ssl-truststore")
    expect(resolution.provenance.find((p) => p.key === "trustStorePath")).toMatchObject({
      layer: "default",
      value: { _tag: "Text", text: "/opt/spoc/conf/ssl-truststore" },
    })
  })

  it("shows invisible characters of an unknown key, such as a second BOM", () => {
    const resolution = resolve([layer("spoc.conf", { "\ufeffmailserver": "a.example" })])

    expect(resolution.warnings[0]?.message).toBe('unknown key "\\ufeffmailserver" is ignored')
    expect(resolution.warnings[0]?.fix).toBe("did you mean mailserver?")
  })

  it("warns when the backup server is the primary", () => {
    const resolution = resolve([
      layer("spoc.conf", { mailserver: "smtp.example.com", mailserverbackup: "SMTP.example.com" }),
    ])

    expect(resolution.warnings.map((w) => w.key)).toContain("mailserverbackup")
  })

  it("warns when the custom cipher list leaves out a version the settings allow", () => {
    const resolution = resolve([
      layer("spoc.conf", {
        cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3",
        allowCustomCipherSuitesForOutboundCommunication: "true",
        customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      }),
    ])

    expect(resolution.warnings).toContainEqual(
      expect.objectContaining({
        key: "customCipherSuitesForOutboundCommunication",
        message: "the custom cipher list has no suite for TLSv1.3, so that version is not used",
      }),
    )
  })
})
