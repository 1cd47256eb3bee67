// Core resolution on top of the spoc.conf layer: the fixtures' values reach the
// settings, and the problems and warnings name spoc.conf lines.
import { ConfigSource, Origin, SettingsResolution } from "@spoc-mail/core"
import { fixturePath } from "@spoc-mail/testkit"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as SpocConfSource from "../src/SpocConfSource.ts"

const fixture = (name: string): string => fixturePath(`spoc-conf/${name}.spoc.conf`)

/** A Management Server stand-in below spoc.conf. */
const central = (settings: Record<string, string>): ConfigSource.ConfigSource => ({
  layer: "management-server",
  load: Effect.succeed({
    layer: "management-server",
    entries: Object.entries(settings).map(([key, raw]) =>
      ConfigSource.entry(key, raw, {
        _tag: "Remote",
        url: "https://ms.example.com/api/v1/controllers/c1/mail-settings",
        revision: "r7",
      }),
    ),
    warnings: [],
  }),
})

const resolveFixture = (name: string, below: Record<string, string> = {}) =>
  Effect.runPromise(
    SettingsResolution.load([SpocConfSource.make({ path: fixture(name) }), central(below)], {
      exists: () => false,
    }),
  )

describe("resolution on top of spoc.conf", () => {
  it("01: takes the branch server from spoc.conf and the sender from below", async () => {
    const resolution = await resolveFixture("01-branch-override", {
      mailserver: "exchange.hq.example.com",
      mailfrom: "print@example.com",
      mailSmtpTimeout: "30000",
    })

    expect(resolution.problems).toEqual([])
    const settings = resolution.settings!
    expect(settings.mailserver.host).toBe("smtp-brn01.example.com")
    expect(settings.mailserverbackup?.host).toBe("smtp-brn01-alt.example.com")
    expect(settings.encryption).toBe("SSL_TLS")
    expect(settings.port).toBe(465)
    expect(settings.commandTimeoutMs).toBe(20000)
    expect(settings.mailfrom.address).toBe("print@example.com")
    const server = resolution.provenance.find((p) => p.key === "mailserver")!
    expect(Origin.format(server.origin)).toBe("01-branch-override.spoc.conf:12")
    expect(server.shadowed.map((s) => s.layer)).toEqual(["management-server"])
    const from = resolution.provenance.find((p) => p.key === "mailfrom")!
    expect(from.layer).toBe("management-server")
  })

  it("02: [EMPTY] clears the central credentials, so no AUTH is sent", async () => {
    const resolution = await resolveFixture("02-empty-and-EMPTY", {
      mailuser: "svc-central",
      mailpass: "central-secret",
      mailserverbackup: "backup.example.com",
    })

    expect(resolution.problems).toEqual([])
    expect(resolution.settings!.credentials).toBeUndefined()
    expect(resolution.settings!.mailserverbackup?.host).toBe("backup.example.com")
    expect(resolution.settings!.connectionTimeoutMs).toBe(5000)
    const user = resolution.provenance.find((p) => p.key === "mailuser")!
    expect(user).toMatchObject({ layer: "spoc.conf", value: { _tag: "Empty", forced: true } })
    expect(JSON.stringify(resolution)).not.toContain("central-secret")
  })

  it("03: warns that the user is set locally while the password is inherited", async () => {
    const alone = await resolveFixture("03-windows-notepad")
    const stacked = await resolveFixture("03-windows-notepad", { mailpass: "from-central" })

    for (const resolution of [alone, stacked]) {
      const warning = resolution.warnings.find((w) => w.key === "mailuser")
      expect(warning?.layer).toBe("spoc.conf")
      expect(warning?.origin).toEqual(Origin.file(fixture("03-windows-notepad"), 10))
      expect(warning?.fix).toMatch(/set mailpass in the same place/)
    }
    expect(alone.warnings.find((w) => w.key === "mailuser")?.message).toBe(
      "mailuser is set by spoc.conf but mailpass comes from default (not set)",
    )
    expect(stacked.warnings.find((w) => w.key === "mailuser")?.message).toBe(
      "mailuser is set by spoc.conf but mailpass comes from management-server",
    )
    expect(stacked.settings!.mailfrom.name).toBe("Tiskové služby")
    expect(stacked.settings!.encryption).toBe("STARTTLS")
    expect(JSON.stringify(stacked)).not.toContain("from-central")
  })

  it("04: refuses the mailfrom with its comment-like tail, naming line 5", async () => {
    const resolution = await resolveFixture("04-tricky-values")

    expect(resolution.settings).toBeUndefined()
    const problem = resolution.problems.find((p) => p.key === "mailfrom")!
    expect(problem.layer).toBe("spoc.conf")
    expect(problem.origin).toEqual(Origin.file(fixture("04-tricky-values"), 5))
    expect(SettingsResolution.formatProblem(problem)).toContain("04-tricky-values.spoc.conf:5")
    // The misspelt mailSmtpEncription leaves no mode for the credentials: refused, not
    // sent in clear. The rest is usable: `true` is a one-label host name, kept as a string.
    expect(resolution.problems.map((p) => p.key)).toEqual(["mailfrom", "mailSmtpEncryption"])
    const backup = resolution.provenance.find((p) => p.key === "mailserverbackup")!
    expect(backup.value).toEqual({ _tag: "Text", text: "true" })
    const port = resolution.provenance.find((p) => p.key === "mailSmtpPort")!
    expect(port.value).toEqual({ _tag: "Text", text: "2525" })
    expect(Origin.format(port.origin)).toBe("04-tricky-values.spoc.conf:9")
  })

  it("04: reports the misspelt key with a suggestion, and every reader warning", async () => {
    const resolution = await resolveFixture("04-tricky-values")

    const unknown = resolution.warnings.find((w) => w.key === "mailSmtpEncription")!
    expect(unknown.fix).toBe("did you mean mailSmtpEncryption?")
    expect(unknown.origin).toEqual(Origin.file(fixture("04-tricky-values"), 6))
    const lines = resolution.warnings
      .filter((w) => w.layer === "spoc.conf" && w.origin?._tag === "File")
      .map((w) => (w.origin as Origin.FileOrigin).line)
    expect(lines).toEqual(expect.arrayContaining([4, 6, 7, 9, 12]))
  })

  it("04: keeps the password whole and never shows it", async () => {
    const resolution = await resolveFixture("04-tricky-values")
    const pass = resolution.provenance.find((p) => p.key === "mailpass")!

    expect(pass.value).toEqual({ _tag: "Secret", set: true })
    expect(JSON.stringify(resolution)).not.toContain("pa#ss")
  })

  it("05: a UTF-16 file resolves like any other", async () => {
    const resolution = await resolveFixture("05-utf16le", { mailfrom: "print@example.com" })

    expect(resolution.problems).toEqual([])
    expect(resolution.settings!.mailserver.host).toBe("smtp.example.com")
    expect(resolution.settings!.port).toBe(465)
  })

  it("fails the whole load when spoc.conf cannot be read", async () => {
    const result = await Effect.runPromise(
      Effect.result(
        SettingsResolution.load([SpocConfSource.make({ path: fixture("99-missing") })]),
      ),
    )
    expect(result._tag).toBe("Failure")
  })
})
