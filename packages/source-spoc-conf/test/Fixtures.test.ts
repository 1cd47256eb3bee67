// C16: the Windows-edited files in fixtures/spoc-conf read as fixtures/README.md says.
import { fixturePath } from "@spoc-mail/testkit"
import { Origin } from "@spoc-mail/core"
import { describe, expect, it } from "vitest"
import { isRedacted, lineOf, load, said, warningLines } from "./helpers.ts"

const fixture = (name: string): string => fixturePath(`spoc-conf/${name}.spoc.conf`)

describe("fixture 01-branch-override", () => {
  it("overrides the server, port and mode and inherits the rest", async () => {
    const path = fixture("01-branch-override")
    const snapshot = await load(path)

    expect(snapshot.layer).toBe("spoc.conf")
    expect(said(snapshot, "mailserver")).toBe("smtp-brn01.example.com")
    expect(said(snapshot, "mailserverbackup")).toBe("smtp-brn01-alt.example.com")
    expect(said(snapshot, "mailSmtpPort")).toBe("465")
    expect(said(snapshot, "mailSmtpEncryption")).toBe("SSL_TLS")
    expect(said(snapshot, "mailSmtpTimeout")).toBe("20000")
    for (const key of ["mailfrom", "mailuser", "mailpass", "mailSmtpConnectionTimeout"]) {
      expect(said(snapshot, key), key).toBe("Inherit")
    }
    expect(snapshot.warnings).toEqual([])
    expect(snapshot.entries.find((e) => e.key === "mailserver")?.origin).toEqual(
      Origin.file(path, 12),
    )
    expect(lineOf(snapshot, "mailSmtpTimeout")).toBe(22)
  })
})

describe("fixture 02-empty-and-EMPTY", () => {
  it("tells inherit (empty, spaces only) from force empty ([EMPTY])", async () => {
    const snapshot = await load(fixture("02-empty-and-EMPTY"))

    expect(said(snapshot, "mailserver")).toBe("relay-lab02.example.com")
    expect(said(snapshot, "mailserverbackup")).toBe("Inherit")
    expect(said(snapshot, "mailfrom")).toBe("no-reply-lab02@example.com")
    expect(said(snapshot, "mailuser")).toBe("ForceEmpty")
    expect(said(snapshot, "mailpass")).toBe("ForceEmpty")
    expect(said(snapshot, "mailSmtpEncryption")).toBe("NONE")
    expect(said(snapshot, "mailSmtpPort")).toBe("25")
    expect(said(snapshot, "mailSmtpConnectionTimeout")).toBe("5000")
    expect(lineOf(snapshot, "mailSmtpConnectionTimeout")).toBe(12)
    expect(said(snapshot, "mailSmtpTimeout")).toBe("Inherit")
    // The `!` lines are comments: the old server on line 15 is not read.
    expect(snapshot.entries.filter((e) => e.key === "mailserver")).toHaveLength(1)
    expect(lineOf(snapshot, "mailserver")).toBe(5)
    expect(snapshot.warnings).toEqual([])
  })
})

describe("fixture 03-windows-notepad", () => {
  it("reads a UTF-8 BOM, CRLF file without a final newline", async () => {
    const snapshot = await load(fixture("03-windows-notepad"))

    expect(said(snapshot, "mailserver")).toBe("mail.corp.example.com")
    expect(lineOf(snapshot, "mailserver")).toBe(7)
    expect(said(snapshot, "mailserverbackup")).toBe("Inherit")
    expect(said(snapshot, "mailfrom")).toBe("Tiskové služby <print-services@corp.example.com>")
    expect(said(snapshot, "mailuser")).toBe("svc-spoc-mail@corp.example.com")
    expect(said(snapshot, "mailpass")).toBe("Inherit")
    expect(said(snapshot, "mailSmtpEncryption")).toBe("STARTTLS")
    expect(said(snapshot, "mailSmtpPort")).toBe("587")
    expect(said(snapshot, "mailSmtpConnectionTimeout")).toBe("10000")
    expect(said(snapshot, "mailSmtpTimeout")).toBe("10000")
    expect(lineOf(snapshot, "mailSmtpTimeout")).toBe(15)
    expect(snapshot.entries.every((e) => !e.key.startsWith("\uFEFF"))).toBe(true)
    expect(warningLines(snapshot)).toEqual([
      "7: trailing spaces after the value of mailserver were removed",
    ])
  })
})

describe("fixture 04-tricky-values", () => {
  it("keeps every byte a naive reader would damage", async () => {
    const snapshot = await load(fixture("04-tricky-values"))

    expect(said(snapshot, "mailserver")).toBe("smtp.example.com")
    expect(said(snapshot, "mailpass")).toBe("pa#ss;w0rd!")
    expect(isRedacted(snapshot, "mailpass")).toBe(true)
    expect(said(snapshot, "mailuser")).toBe('"svc print"')
    expect(said(snapshot, "mailfrom")).toBe("Print Room <print@example.com> ; not a comment")
    expect(lineOf(snapshot, "mailfrom")).toBe(5)
    expect(said(snapshot, "mailSmtpEncription")).toBe("STARTTLS")
    expect(said(snapshot, "mailSmtpPort")).toBe("2525")
    expect(lineOf(snapshot, "mailSmtpPort")).toBe(9)
    expect(said(snapshot, "mailserverbackup")).toBe("true")
    expect(said(snapshot, "trustStorePath")).toBe("\\\\fileserver\\certs\\ssl-truststore")
    expect(said(snapshot, "mailSmtpTimeout")).toBe("15000")
  })

  it("warns about the quotes, the lone [EMPTY], the repeat and the trailing space", async () => {
    const snapshot = await load(fixture("04-tricky-values"))

    expect(warningLines(snapshot)).toEqual([
      "4: the value of mailuser is wrapped in quotes, which are kept as part of it",
      "7: a lone [EMPTY] line is not a setting and is ignored",
      "9: mailSmtpPort is set on line 8 and again on line 9; line 9 wins",
      "12: trailing spaces after the value of mailSmtpTimeout were removed",
    ])
    for (const warning of snapshot.warnings) expect(warning.fix).toBeTruthy()
  })
})

describe("fixture 05-utf16le", () => {
  it("decodes UTF-16LE with a BOM", async () => {
    const snapshot = await load(fixture("05-utf16le"))

    expect(said(snapshot, "mailserver")).toBe("smtp.example.com")
    expect(said(snapshot, "mailSmtpEncryption")).toBe("SSL_TLS")
    expect(said(snapshot, "mailSmtpPort")).toBe("465")
    expect(lineOf(snapshot, "mailSmtpPort")).toBe(3)
    expect(snapshot.entries.map((e) => e.key)).toEqual([
      "mailserver",
      "mailSmtpEncryption",
      "mailSmtpPort",
    ])
    expect(snapshot.warnings).toEqual([])
  })
})
